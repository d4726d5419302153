# The nixpush package, built with nixpkgs' buildGoModule: a static binary
# (CGO_ENABLED=0), the builder of every derivation nix/default.nix makes,
# so it must run in the Nix sandbox with no /lib.
#
# vendorHash is the NAR hash of the "go mod vendor" directory. After a
# change to go.mod or go.sum, recompute it with either:
#   go mod vendor -o /tmp/v && nix hash path /tmp/v && rm -rf /tmp/v
# or set vendorHash = lib.fakeHash, run "nix build .#nixpush" and copy the
# hash from the "hash mismatch … got:" line. nix/flake_test.go
# (TestVendorHash) fails when it is stale.
{ buildGoModule, src, version }:
buildGoModule {
  pname = "nixpush";
  inherit src version;

  vendorHash = "sha256-jrhkRqIj5RNg/29vHq22QTt3dwfyZ+go7mA9wRFGjFU=";

  subPackages = [ "cmd/nixpush" ];
  # containers/image without cgo: OpenPGP in Go instead of gpgme.
  tags = [ "containers_image_openpgp" ];
  env.CGO_ENABLED = 0;
  # A position-independent Go binary asks for a dynamic loader; nixpush
  # must stay static to be a builder in the sandbox.
  hardeningDisable = [ "pie" ];
  ldflags = [ "-s" "-w" "-X github.com/nixpush/nixpush/cmd/nixpush/cli.Version=${version}" ];

  # The package's tests need Nix, registries, skopeo and podman: they run
  # from the repository (bash .ci/test), not in the sandbox.
  doCheck = false;

  doInstallCheck = true;
  installCheckPhase = ''
    runHook preInstallCheck
    readelf=''${READELF:-readelf}
    command -v "$readelf" >/dev/null || { echo "no readelf to check that nixpush is static" >&2; exit 1; }
    if "$readelf" -l "$out/bin/nixpush" | grep -q INTERP; then
      echo "nixpush is dynamically linked: nix/default.nix needs a static binary" >&2
      exit 1
    fi
    "$out/bin/nixpush" version
    runHook postInstallCheck
  '';

  meta = {
    description = "Build container images with Nix and push them without tarballs";
    mainProgram = "nixpush";
    platforms = [ "x86_64-linux" "aarch64-linux" ];
  };
}
