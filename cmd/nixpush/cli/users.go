package cli

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/nixpush/nixpush/layers/users"
)

func newCmdUsers() *cobra.Command {
	return newBuilderCmd("users",
		"Write the account files of np.users (runs inside Nix builds)",
		`users is the builder of nix/users.nix (np.users). It reads .attrs.json
("users" and "groups", every field filled in by np.users), checks them and
writes etc/passwd, etc/group, etc/shadow (locked accounts),
etc/nsswitch.conf and the home directories to outputs.out.`,
		func(_ context.Context, attrsFile string) error {
			return users.WriteFile(attrsFile)
		})
}
