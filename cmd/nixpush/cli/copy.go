package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/nixpush/nixpush/internal/redact"
	"github.com/nixpush/nixpush/transport/imagecopy"
	"github.com/nixpush/nixpush/transport/registry"
)

func newCmdCopy() *cobra.Command {
	var (
		reg                   registryFlags
		sign                  signFlags
		srcCreds, destCreds   string
		srcTLS                bool
		srcCertDir            string
		srcDaemon, destDaemon string
		digestFile, policy    string
		tags, mountFrom       []string
		all                   bool
		multiArch             string
		platform              [3]string // os, arch, variant
		srcPW                 = passwordSource{flag: "src-password-stdin", env: envSrcPassword}
		destPW                = passwordSource{flag: "dest-password-stdin", env: envDestPassword}
	)
	cmd := &cobra.Command{
		Use:   "copy [flags] SRC DEST",
		Short: "Copy an image, such as nix:/nix/store/…-image.json to docker://registry/repo:tag",
		Long: `copy copies an image between any containers/image locations (nix:, docker://,
oci:, oci-archive:, dir:, docker-archive:), like skopeo copy.

From nix: to docker://, the image is pushed by the engine of nixpush push: the
registry is asked for the manifest first (a re-push of an unchanged image
makes two requests, two more for its SBOM), then for each blob; layers go from /nix/store straight
to the registry, hashed once as they stream, and only when the registry lacks
them, with no local cache. --additional-tag and --mount-from are more
destinations and mount sources of the same push. Layers and manifest are kept
exactly as described. On a layer that no longer matches its description, no
manifest is written and the error names the layer and the store paths that
changed. The image's SBOM, when its description has one, is attached to the
pushed manifest as an OCI referrer (--no-sbom: not).

An index description (buildIndex) is copied whole by default: every image's
blobs (each unique blob once), each image's manifest by digest, then the
index under the tag; the same to oci: and dir:. --multi-arch (or --all)
chooses as skopeo does: system copies only the image of the machine's
platform (or of --override-os/--override-arch/--override-variant), all the
index and every image, index-only the index alone. docker-archive: and
docker-daemon: hold single images: they get the system's image.

Progress and a summary go to stderr; the last line on stdout is the manifest
digest (for an index copied whole, the index digest). Credentials come from --authfile (default $REGISTRY_AUTH_FILE), the
usual auth.json and docker config.json files, credential helpers, or
--src-creds and --dest-creds USER with the password on stdin
(--dest-password-stdin), in $NIXPUSH_DEST_PASSWORD ($NIXPUSH_SRC_PASSWORD) or
typed at a terminal prompt. Credentials are never sent without TLS
verification (--dest-tls-verify=false, which also allows plain HTTP) except to
a loopback address or a host named with --insecure-creds-host.

--sign-by-sigstore-private-key signs what is written with a sigstore key, as
skopeo does (the key is decrypted before anything is pushed): each tag gets a
signature naming it, stored as a sigstore attachment (sha256-<digest>.sig),
where skopeo's policy.json "sigstoreSigned" and cosign find it. A tag that
already has a signature by the key gets no second one.`,
		Example: `  nix-build -A image   # result -> /nix/store/…-image-app.json
  nixpush copy nix:result docker://registry.example.com/app:v1 --additional-tag latest
  nixpush copy --authfile ci-auth.json --digestfile app.digest nix:result docker://registry.example.com/app:v1
  printf '%s' "$TOKEN" | nixpush copy --dest-creds ci --dest-password-stdin nix:result docker://registry.example.com/app:v1
  nixpush copy --sign-by-sigstore-private-key release.private --sign-passphrase-file pass.txt nix:result docker://registry.example.com/app:v1
  nixpush copy nix:result oci-archive:app.tar:v1
  nix-build -A index   # buildIndex: result -> /nix/store/…-index-app.json
  nixpush copy nix:result docker://registry.example.com/app:v1   # every platform, then the index
  nixpush copy --multi-arch system --override-arch arm64 nix:result oci:app-arm64:v1`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			dest := reg.options(cmd, 0)
			src := reg.sourceOptions(srcCertDir)
			if cmd.Flags().Changed("src-tls-verify") {
				src = append(src, registry.WithTLSVerify(srcTLS))
			}
			if err := copyCredentials(cmd, []copyCreds{
				{"src-creds", srcCreds, &srcPW, &src},
				{"dest-creds", destCreds, &destPW, &dest},
			}); err != nil {
				return err
			}
			more, err := multiArchOptions(all, multiArch, platform)
			if err != nil {
				return err
			}
			signOpts, signer, err := sign.signer(cmd)
			if err != nil {
				return err
			}
			defer signer.Close()
			dest = append(dest, signOpts...)
			res, err := imagecopy.Copy(cmd.Context(), args[0], args[1], append(more,
				imagecopy.WithRegistryOptions(dest...),
				imagecopy.WithSourceRegistryOptions(src...),
				imagecopy.WithSourceDaemonHost(srcDaemon),
				imagecopy.WithDestinationDaemonHost(destDaemon),
				imagecopy.WithPolicyFile(policy),
				imagecopy.WithAdditionalTags(tags...),
				imagecopy.WithMountFrom(mountFrom...),
			)...)
			if err != nil {
				return err
			}
			if !reg.quiet {
				res.Report.WriteSummary(redact.Writer(cmd.ErrOrStderr())) //nolint:errcheck // best effort, like progress
			}
			if digestFile != "" {
				if err := os.WriteFile(digestFile, []byte(res.Digest.String()), 0o644); err != nil {
					return fmt.Errorf("writing --digestfile: %w", err)
				}
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), res.Digest)
			return err
		},
	}
	reg.add(cmd, 0)
	sign.add(cmd)
	f := cmd.Flags()
	f.StringVar(&srcCreds, "src-creds", "", "log in as `USER` to the source registry, with the password from --src-password-stdin, $"+envSrcPassword+" or a terminal prompt (USER:PASSWORD also works, but shows in the process list)")
	f.StringVar(&destCreds, "dest-creds", "", "log in as `USER` to the destination registry, with the password from --dest-password-stdin, $"+envDestPassword+" or a terminal prompt (USER:PASSWORD also works, but shows in the process list)")
	f.BoolVar(&srcPW.stdin, "src-password-stdin", false, "read the password of --src-creds from stdin")
	f.BoolVar(&destPW.stdin, "dest-password-stdin", false, "read the password of --dest-creds from stdin")
	f.BoolVar(&srcTLS, "src-tls-verify", true, "require HTTPS and verify certificates when talking to the source registry (false: also plain HTTP)")
	f.StringVar(&srcCertDir, "src-cert-dir", "", "use certificates at `DIR` (*.crt, *.cert, *.key) to connect to the source registry")
	// Docker's own clients honour DOCKER_HOST; containers/image does not,
	// so the flags default to it.
	f.StringVar(&srcDaemon, "src-daemon-host", os.Getenv("DOCKER_HOST"), "use docker daemon `HOST` for a docker-daemon: source (default $DOCKER_HOST)")
	f.StringVar(&destDaemon, "dest-daemon-host", os.Getenv("DOCKER_HOST"), "use docker daemon `HOST` for a docker-daemon: destination (default $DOCKER_HOST)")
	f.StringVar(&digestFile, "digestfile", "", "write the digest of the pushed manifest to `FILE`")
	f.StringVar(&policy, "policy", "", "signature policy `FILE` (default: accept any image)")
	f.StringArrayVar(&tags, "additional-tag", nil, "also tag the image as `TAG` (a tag, or a full REGISTRY/REPO:TAG on the destination's registry); repeatable")
	f.BoolVarP(&all, "all", "a", false, "copy every image of an index, and the index (--multi-arch all)")
	f.StringVar(&multiArch, "multi-arch", "", "of an index, copy the image of this `SELECTION`: system (the machine's platform, or --override-*), all, or index-only (default: all for a nix: index, except to docker-archive: and docker-daemon:; system otherwise)")
	f.StringVar(&platform[0], "override-os", "", "choose the image of an index for `OS` instead of the machine's")
	f.StringVar(&platform[1], "override-arch", "", "choose the image of an index for `ARCH` instead of the machine's")
	f.StringVar(&platform[2], "override-variant", "", "choose the image of an index for `VARIANT` instead of the machine's")
	f.StringArrayVar(&mountFrom, "mount-from", nil, "`REPO` of the destination registry that may hold the image's blobs: mount them from there instead of uploading; repeatable")
	return cmd
}

// copyCreds is one side's credentials flag, and the options it adds to.
type copyCreds struct {
	flag, value string
	src         *passwordSource
	opts        *[]registry.Option
}

// copyCredentials turns --src-creds and --dest-creds into options, reading
// the passwords they leave out.
func copyCredentials(cmd *cobra.Command, sides []copyCreds) error {
	if sides[0].src.stdin && sides[1].src.stdin {
		return errBothStdin
	}
	p := &passwords{in: cmd.InOrStdin(), prompt: cmd.ErrOrStderr()}
	for _, c := range sides {
		if c.value != "" {
			user, password, err := p.userPassword(c.flag, c.value, c.src)
			if err != nil {
				return err
			}
			*c.opts = append(*c.opts, registry.WithCredentials(user, password))
		}
		if err := c.src.checkUsed(); err != nil {
			return err
		}
	}
	return nil
}

// multiArchOptions turns --all, --multi-arch and --override-* into options,
// as skopeo reads them.
func multiArchOptions(all bool, multiArch string, platform [3]string) ([]imagecopy.Option, error) {
	var opts []imagecopy.Option
	if all {
		if multiArch != "" && multiArch != imagecopy.MultiArchAll {
			return nil, fmt.Errorf("--all and --multi-arch %s: give one or the other", multiArch)
		}
		multiArch = imagecopy.MultiArchAll
	}
	if multiArch != "" {
		opts = append(opts, imagecopy.WithMultiArch(multiArch))
	}
	if platform != [3]string{} {
		opts = append(opts, imagecopy.WithPlatform(platform[0], platform[1], platform[2]))
	}
	return opts, nil
}
