# pullImage and pullImageFromLock: fetch a base image by digest into the
# store as an OCI layout (a fixed-output derivation whose builder is
# `nixpush fetch-image`). See docs/nix-api.md.
{ exe, system, archOf, safeName }:
let
  # PEM text, from a path or a string (a store path's contents are read).
  pemOf = c:
    if c == null then null
    else if builtins.isString c && builtins.substring 0 10 c == "-----BEGIN" then c
    else builtins.readFile c;

  pullImage =
    { imageName
    , imageDigest
    , sha256
    , os ? "linux"
    , arch ? archOf system
    , variant ? null
    , tlsVerify ? true
    , caCert ? null
    , name ? null
    }:
    let
      fail = msg: throw "nixpush: pullImage ${imageName}: ${msg}";
      checked =
        if !(builtins.isString imageDigest) || builtins.match "sha256:[0-9a-f]{64}" imageDigest == null then
          fail "imageDigest: ${builtins.toJSON imageDigest} is not a digest such as sha256:<64 hex digits> (nixpush lock prints it)"
        else if !(builtins.isString sha256) || sha256 == "" then
          fail "sha256: missing (the NAR hash nixpush lock prints)"
        else if !(builtins.isBool tlsVerify) then
          fail "tlsVerify: ${builtins.toJSON tlsVerify} is not a boolean"
        else true;
      # The store path name: the repository's last component and the
      # digest's first characters.
      base = baseNameOf imageName;
      short = builtins.substring 7 12 imageDigest;
      drv = builtins.derivation ({
        name = if name != null then name else safeName "image-${base}-${short}";
        inherit system;
        builder = exe;
        args = [ "fetch-image" ];
        __structuredAttrs = true;
        outputHashMode = "recursive";
        outputHashAlgo = "sha256";
        outputHash = sha256;
        # Credentials reach the fetch through the environment of the
        # process that builds (nix-build's, or the daemon's): never the
        # derivation or the store.
        impureEnvVars = [ "NIXPUSH_AUTH" "NIXPUSH_AUTH_FILE" "http_proxy" "https_proxy" "no_proxy" "HTTP_PROXY" "HTTPS_PROXY" "NO_PROXY" ];
        inherit imageName imageDigest os arch tlsVerify;
      } // (if variant == null then { } else { inherit variant; })
        // (if caCert == null then { } else { caCert = pemOf caCert; }));
    in
    assert checked; drv // { inherit imageName imageDigest; };

  # A file that `nixpush lock` wrote: { imageName, imageDigest, sha256,
  # os, arch, variant? }; extra arguments (tlsVerify, caCert, name) are
  # passed on.
  pullImageFromLock = lockFile: args:
    let
      lock = builtins.fromJSON (builtins.readFile lockFile);
      known = [ "imageName" "imageDigest" "sha256" "os" "arch" "variant" ];
      unknown = builtins.attrNames (removeAttrs lock known);
    in
    if unknown != [ ] then throw "nixpush: pullImageFromLock ${toString lockFile}: unknown field ${builtins.head unknown}"
    else pullImage (lock // args);
in
{
  inherit pullImage;
  pullImageFromLock = lockFile: pullImageFromLock lockFile { };
  pullImageFromLockWith = pullImageFromLock;
}
