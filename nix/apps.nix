# Flake apps attached to every buildImage and buildIndex result (see
# docs/nix-api.md, "Apps"; an index is copied whole, except by
# copyToPodman and copyToDockerDaemon, which load the machine's image).
# Builtins only: each app is a #!/bin/sh script, written by a tiny
# derivation whose builder is the static nixpush binary (write-app).
#
# Every script runs "nixpush copy" with the caller's arguments passed
# through unchanged and never prints them: a --dest-creds USER:PASSWORD stays
# out of every log (nix2container leaked it by echoing "$@"). Stdin and the
# environment pass through too, for --dest-password-stdin and
# $NIXPUSH_DEST_PASSWORD, which keep the password out of the process list.
#
#   exe:    the nixpush binary (a store path string)
#   system: the Nix system the scripts are written on
{ exe, system }:
image:
let
  # Single-quote s for sh.
  q = s: "'" + builtins.replaceStrings [ "'" ] [ "'\\''" ] s + "'";

  src = q "nix:${image}";
  name = image.imageName;
  tag = image.imageTag;
  np = q exe;

  script = program: body: builtins.derivation {
    name = "nixpush-${program}";
    inherit system program;
    builder = exe;
    args = [ "write-app" ];
    __structuredAttrs = true;
    script = ''
      #!/bin/sh
      # ${program}: ${name}:${tag}, made by nixpush (nix/apps.nix).
      # Arguments go to "nixpush copy" unchanged and are never printed.
      ${body}
    '';
  };

  # A flake app, { type = "app"; program; }; drv is the derivation that
  # holds the script, for nix-build and "${…}".
  app = program: body:
    let drv = script program body; in
    { type = "app"; program = "${drv}/bin/${program}"; inherit drv; };
in
{
  # nix run .#push [-- nixpush copy flags]: push to docker://name:tag.
  copyToRegistry = app "copy-to-registry" ''
    exec ${np} copy "$@" ${src} ${q "docker://${name}:${tag}"}
  '';

  # nix run .#push -- DESTINATION [nixpush copy flags], DESTINATION any
  # transport: docker://host/repo:tag, oci:DIR:tag, docker-archive:FILE…
  copyTo = app "copy-to" ''
    case "''${1-}" in
    "" | -*)
      echo "usage: copy-to DESTINATION [nixpush copy flags...]" >&2
      echo "  DESTINATION: docker://REGISTRY/REPO:TAG, oci:DIR:TAG, docker-archive:FILE, ..." >&2
      exit 2 ;;
    esac
    dest=$1
    shift
    exec ${np} copy "$@" ${src} "$dest"
  '';

  # The Docker daemon: $DOCKER_HOST, else /var/run/docker.sock (or
  # --dest-daemon-host). nixpush names the socket if no daemon is there.
  copyToDockerDaemon = app "copy-to-docker-daemon" ''
    exec ${np} copy "$@" ${src} ${q "docker-daemon:${name}:${tag}"}
  '';

  # podman's local storage: nixpush writes a docker-archive to a temporary
  # file, "podman load" reads it. (nixpush's containers-storage: transport
  # is not used: it needs podman's storage configuration and privileges
  # that a static nixpush run by "nix run" cannot count on.)
  copyToPodman = app "copy-to-podman" ''
    command -v podman >/dev/null 2>&1 || { echo "copy-to-podman: podman is not on PATH" >&2; exit 127; }
    dir=$(mktemp -d "''${TMPDIR:-/tmp}/nixpush.XXXXXX") || exit 1
    trap 'rm -rf "$dir"' EXIT
    trap 'exit 130' INT TERM
    ${np} copy "$@" ${src} "docker-archive:$dir/image.tar:"${q "${name}:${tag}"} >/dev/null || exit $?
    podman load -i "$dir/image.tar"
  '';
}
