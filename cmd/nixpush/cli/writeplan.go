package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/nixpush/nixpush/internal/jsonfield"
	"github.com/nixpush/nixpush/internal/nixattrs"
	"github.com/nixpush/nixpush/transport/registry"
)

func newCmdWritePlan() *cobra.Command {
	return newBuilderCmd("write-plan",
		"Write a release plan of nix/plan.nix (runs inside Nix builds)",
		`write-plan is the builder of nix/plan.nix. It checks the "plan" attribute
(images and their docker:// destinations) and writes it as JSON to
outputs.out, for nixpush push --plan. The output refers to every image
description it names, so the plan keeps them alive and nix copy brings them.`,
		writePlan)
}

func writePlan(_ context.Context, attrsFile string) error {
	var a struct {
		Plan json.RawMessage `json:"plan"`
	}
	_, out, err := nixattrs.Read(attrsFile, &a)
	if err != nil {
		return err
	}
	if len(a.Plan) == 0 {
		return fmt.Errorf("structured attributes %s: plan: missing", attrsFile)
	}
	plan, err := registry.ParsePlan(a.Plan)
	if err != nil {
		return fmt.Errorf("structured attributes %s: %w", attrsFile, jsonfield.Prefix("plan", err))
	}
	b, err := json.MarshalIndent(plan, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(out, append(b, '\n'), 0o644)
}
