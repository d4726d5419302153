# Example images, for demos and tests. Builtins only.
#
#   nixpush: a store path, derivation or local path holding bin/nixpush.
#   busybox: a store path or local directory holding a static bin/busybox.
#   compression: how the images' and base's layers are compressed, as
#                buildImage takes it ("none", "zstd", "gzip" or
#                { algorithm; level; }), e.g. --argstr compression zstd.
{ nixpush, busybox, system ? builtins.currentSystem, compression ? "none" }:
let
  np = import ../. { inherit nixpush system; };

  bb =
    if builtins.isPath busybox then builtins.path { path = busybox; name = "busybox"; }
    else if builtins.isString busybox && !(builtins.hasContext busybox) then builtins.storePath busybox
    else busybox;
  bin = "${bb}/bin/busybox";

  # A derivation built by a busybox shell script.
  run = name: script: builtins.derivation {
    inherit name system;
    builder = bin;
    args = [ "sh" "-e" "-c" script ];
  };

  # A small root file system: /bin holds busybox applets as symlinks into
  # the store, /tmp is made world-writable by perms below.
  rootfs = run "rootfs" ''
    ${bin} mkdir -p $out/bin $out/etc $out/tmp
    for a in sh ls cat echo env; do ${bin} ln -s ${bin} $out/bin/$a; done
    echo 'root:x:0:0:root:/root:/bin/sh' > $out/etc/passwd
  '';

  # An application that depends on busybox.
  hello = run "hello" ''
    ${bin} mkdir -p $out/bin
    ${bin} printf '#!${bin} sh\necho hello from nixpush\n' > $out/bin/hello
    ${bin} chmod 0755 $out/bin/hello
  '';

  tmpWritable = [{ path = rootfs; regex = "/tmp"; mode = "1777"; }];
in
rec {
  inherit rootfs hello;
  busybox = bb;

  # busybox in a root file system; the entrypoint names busybox's store
  # path through the config.
  minimal = np.buildImage {
    name = "minimal";
    inherit compression;
    copyToRoot = [ rootfs ];
    perms = tmpWritable;
    config = {
      Entrypoint = [ bin "sh" ];
      Env = [ "PATH=/bin" ];
    };
  };

  # A shared layer holding busybox, reused by layered.
  base = np.buildLayer {
    deps = [ bb ];
    inherit compression;
    metadata.created_by = "nixpush example: busybox";
  };

  # The application on top of the shared busybox layer; hello reaches the
  # image only through its config.
  layered = np.buildImage {
    name = "layered";
    tag = "v1";
    inherit compression;
    layers = [ base ];
    copyToRoot = [ rootfs ];
    perms = tmpWritable;
    maxLayers = 2;
    config = {
      Entrypoint = [ "${hello}/bin/hello" ];
      Env = [ "PATH=/bin" ];
    };
  };

  source = "https://github.com/nixpush/nixpush";

  # The layered application for one architecture, with annotations. The
  # files are the same for every architecture here: these machines build
  # no aarch64 binaries, and an index needs only each platform's
  # description (with nixpkgs, pass each system's packages instead).
  multiarchFor = arch: np.buildImage {
    name = "multiarch";
    tag = "v1";
    inherit arch compression;
    layers = [ base ];
    copyToRoot = [ rootfs ];
    perms = tmpWritable;
    maxLayers = 2;
    config = {
      Entrypoint = [ "${hello}/bin/hello" ];
      Env = [ "PATH=/bin" ];
    };
    annotations = {
      "org.opencontainers.image.source" = source;
      "org.opencontainers.image.version" = "1.0";
    };
  };
  multiarchAmd64 = multiarchFor "amd64";
  multiarchArm64 = multiarchFor "arm64";

  # One tag for both: an OCI index of the two images, which share every
  # layer.
  index = np.buildIndex {
    name = "multiarch";
    tag = "v1";
    images = [ multiarchAmd64 multiarchArm64 ];
    annotations = {
      "org.opencontainers.image.source" = source;
      "org.opencontainers.image.revision" = "0123456789abcdef0123456789abcdef01234567";
    };
  };
}
