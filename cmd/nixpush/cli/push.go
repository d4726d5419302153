package cli

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/nixpush/nixpush/internal/redact"
	"github.com/nixpush/nixpush/transport/registry"
)

func newCmdPush() *cobra.Command {
	var (
		reg              registryFlags
		sign             signFlags
		destCreds        string
		keepGoing        bool
		plans, credsFor  []string
		destPW           = passwordSource{flag: "dest-password-stdin", env: envDestPassword}
		reportFile       string
		progressInterval time.Duration
	)
	cmd := &cobra.Command{
		Use:   "push [flags] [IMAGE DEST...]...",
		Short: "Push many nix: images, each to one or more tags, registries and repositories, in one run",
		Long: `push pushes a release: many image descriptions, each to one or more
docker://REGISTRY/REPO:TAG destinations, in one process. Images and their
destinations come from arguments (an image, then its destinations, then the
next image: every argument that starts with docker:// is a destination of the
image before it) and from --plan files, which nix/plan.nix writes:

  {"images": [{"image": "/nix/store/…-image-app.json",
               "destinations": ["docker://registry.example.com/app:v1", …]}, …]}

Each repository is first asked for each image's manifest (by tag, then by
digest): where it is there, no blob is checked and only tags naming another
manifest are written, so a re-run of an unchanged release makes two requests per
tag (two more per repository for an image's SBOM, attached to its manifest as
an OCI referrer unless --no-sbom). Otherwise each unique blob is checked once per repository and uploaded at
most once per registry; other repositories of that registry get it by a cross-repository
mount (POST ?mount=&from=), or by an upload if the registry refuses. A
manifest is written only once all of its blobs are in place, then its tags.
One pool of --parallel operations serves the whole run. Dropped connections,
timeouts, 408, 429 and 5xx are retried with exponential backoff and jitter
(the blob is streamed again from /nix/store); refused credentials, a missing
repository and a digest mismatch fail at once. A layer whose store paths no
longer match an image's description fails that image only; other images
sharing the layer supply it. An image whose description gives a blob another
size than the registry holds it with fails, and its manifest is not written.

An index description (buildIndex) is pushed whole: its images' blobs join
the run's (each unique blob once per registry), each image's manifest is
written by digest, then the index under its tags; stdout and --report give
the index digest, and the report each platform's manifest digest.

Destinations name their registry host (docker.io/… for Docker Hub).
Credentials are per registry: from the auth files (--authfile), or
--creds-for HOST=USER for one registry; --dest-creds USER only when every
destination is on one registry. Passwords come from stdin
(--dest-password-stdin), $NIXPUSH_DEST_PASSWORD or a terminal prompt.
Without TLS verification (--dest-tls-verify=false, which allows plain
HTTP), credentials go only to loopback addresses and --insecure-creds-host.

Progress and a summary go to stderr. stdout gets one line per pushed tag:
"DIGEST REGISTRY/REPO:TAG". --report writes the summary as JSON, with each
image's manifest digest (for signing). The exit code is non-zero unless every
image reached every destination; --keep-going lets the other images finish
when one fails.

--sign-by-sigstore-private-key signs each tag after its manifest is written
(skopeo's flags; the key is decrypted before any request): a sigstore
signature naming the tag, stored as a sigstore attachment where skopeo's
policy.json "sigstoreSigned" and cosign find it. A tag that already has a
signature by the key gets no second one, so a re-run adds none.`,
		Example: `  nixpush push nix:$(nix-build -A app) docker://registry.example.com/app:v1 docker://registry.example.com/app:latest \
               nix:$(nix-build -A worker) docker://registry.example.com/worker:v1
  nixpush push --plan $(nix-build -A plan) --report release.json --keep-going
  nixpush push --authfile ci-auth.json --plan plan.json
  nixpush push --plan plan.json --sign-by-sigstore-private-key release.private --sign-passphrase-file pass.txt
  printf '%s' "$TOKEN" | nixpush push --creds-for registry.example.com=ci --dest-password-stdin --plan plan.json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			images, err := pushImages(plans, args)
			if err != nil {
				return err
			}
			opts := reg.options(cmd, progressInterval)
			creds, err := pushCredentials(cmd, destCreds, credsFor, &destPW)
			if err != nil {
				return err
			}
			opts = append(append(opts, creds...), registry.WithKeepGoing(keepGoing))
			signOpts, signer, err := sign.signer(cmd)
			if err != nil {
				return err
			}
			defer signer.Close()
			opts = append(opts, signOpts...)
			stderr := redact.Writer(cmd.ErrOrStderr())
			rep, pushErr := registry.Push(cmd.Context(), images, opts...)
			if rep == nil {
				return pushErr
			}
			if !reg.quiet {
				rep.WriteSummary(stderr) //nolint:errcheck // best effort, like progress
			}
			if reportFile != "" {
				if err := rep.WriteFile(reportFile); err != nil {
					return errors.Join(pushErr, err)
				}
			}
			out := cmd.OutOrStdout()
			for _, img := range rep.Images {
				for _, d := range img.Destinations {
					if d.Status == registry.StatusPushed {
						fmt.Fprintf(out, "%s %s\n", img.Digest, d.Reference)
					}
				}
			}
			return pushErr
		},
	}
	reg.add(cmd, registry.DefaultRetryTimes)
	sign.add(cmd)
	f := cmd.Flags()
	f.StringArrayVar(&plans, "plan", nil, "read images and destinations from the plan `FILE` (JSON, see nix/plan.nix); repeatable")
	f.StringVar(&reportFile, "report", "", "write what was pushed (digests, tags, totals) as JSON to `FILE`")
	f.BoolVar(&keepGoing, "keep-going", false, "when an image fails, let the others finish (the exit code still says it failed)")
	f.StringVar(&destCreds, "dest-creds", "", "log in as `USER` to the destination registry; refused when the destinations are on several registries (see --creds-for). The password comes from --dest-password-stdin, $"+envDestPassword+" or a terminal prompt (USER:PASSWORD also works, but shows in the process list)")
	f.StringArrayVar(&credsFor, "creds-for", nil, "log in to one registry only, as `HOST=USER` (HOST as destinations write it, port included), with the password from --dest-password-stdin, $"+envDestPassword+" or a terminal prompt; repeatable (for several registries in CI, use --authfile)")
	f.BoolVar(&destPW.stdin, "dest-password-stdin", false, "read the password of --dest-creds or --creds-for from stdin")
	f.DurationVar(&progressInterval, "progress-interval", registry.DefaultProgressInterval, "how often a progress line is printed when stderr is not a terminal")
	return cmd
}

// pushCredentials turns --dest-creds or --creds-for into options,
// reading the passwords the arguments leave out.
func pushCredentials(cmd *cobra.Command, destCreds string, credsFor []string, src *passwordSource) ([]registry.Option, error) {
	if destCreds != "" && len(credsFor) > 0 {
		return nil, errors.New("--dest-creds and --creds-for: give one or the other (--dest-creds is for a run that reaches one registry)")
	}
	p := &passwords{in: cmd.InOrStdin(), prompt: cmd.ErrOrStderr()}
	opts, err := p.credsFor(credsFor, src)
	if err != nil {
		return nil, err
	}
	if destCreds != "" {
		user, password, err := p.userPassword("dest-creds", destCreds, src)
		if err != nil {
			return nil, err
		}
		opts = append(opts, registry.WithCredentials(user, password))
	}
	return opts, src.checkUsed()
}

// pushImages reads the plan files, then the arguments: an image, then the
// docker:// destinations that follow it.
func pushImages(plans, args []string) ([]registry.Image, error) {
	var images []registry.Image
	for _, p := range plans {
		plan, err := registry.ReadPlan(p)
		if err != nil {
			return nil, err
		}
		images = append(images, plan.Images...)
	}
	fromPlans := len(images)
	for _, a := range args {
		if strings.HasPrefix(a, "docker://") {
			if len(images) == fromPlans {
				return nil, fmt.Errorf("destination %s comes before any image argument", a)
			}
			last := &images[len(images)-1]
			last.Destinations = append(last.Destinations, a)
			continue
		}
		images = append(images, registry.Image{Source: a})
	}
	if len(images) == 0 {
		return nil, errors.New("nothing to push: give IMAGE DEST... arguments or --plan FILE")
	}
	for _, img := range images {
		if len(img.Destinations) == 0 {
			return nil, fmt.Errorf("image %s: no docker:// destinations follow it", img.Source)
		}
	}
	return images, nil
}
