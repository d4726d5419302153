# nixpush's Nix functions: build image descriptions and layer files with
# builtins only (no nixpkgs). See docs/nix-api.md.
#
#   nixpush: a store path, derivation or local path holding bin/nixpush
#            (a static binary: it is the builder of every derivation here).
{ nixpush, system ? builtins.currentSystem, ... }:
let
  # A local path (./result, /tmp/dir) is added to the store; a store path
  # given as a plain string (--argstr) gets its string context back, so that
  # derivations depend on it; a derivation is used as is.
  toStore = name: x:
    if builtins.isPath x then builtins.path { path = x; inherit name; }
    else if builtins.isString x && !(builtins.hasContext x) then builtins.storePath x
    else x;

  exe = "${toStore "nixpush" nixpush}/bin/nixpush";

  withApps = image: image // import ./apps.nix { inherit exe system; } image;

  defaultTime = "1970-01-01T00:00:01Z";

  # OCI (Go) architecture names of Nix systems.
  archOf = sys:
    let
      table = {
        x86_64-linux = "amd64";
        aarch64-linux = "arm64";
        i686-linux = "386";
        armv7l-linux = "arm";
        powerpc64le-linux = "ppc64le";
        s390x-linux = "s390x";
        riscv64-linux = "riscv64";
      };
    in
    table.${sys} or (throw "nixpush: no OCI architecture known for system ${sys}; pass arch");

  # Store path names allow neither "/" nor ":".
  safeName = builtins.replaceStrings [ "/" ":" "@" ] [ "-" "-" "-" ];

  # The hash part of a store path, without string context.
  hashPart = p: builtins.substring 0 32 (baseNameOf (builtins.unsafeDiscardStringContext p));

  # The tiny derivation whose output is the config's JSON: its references
  # are exactly the store paths the config names, so that
  # exportReferencesGraph (which takes whole store paths only) can give
  # their closures to the image builder.
  configCarrier = config: builtins.derivation {
    name = "nixpush-config.json";
    inherit system;
    builder = exe;
    args = [ "write-config" ];
    __structuredAttrs = true;
    inherit config;
  };

  checkMaxLayers = n:
    if builtins.isInt n && n >= 1 then n
    else throw "nixpush: maxLayers must be an integer of at least 1";

  # The compression argument, normalised to the builder's "compression"
  # attribute: { } for none (the attribute is left out, so an uncompressed
  # image's derivation is what it was before compression existed), else
  # { compression = { algorithm; level?; }; }. Without a level the
  # builder uses the algorithm's default (zstd 3, gzip 6). The builder
  # checks the attribute again; checking here fails at evaluation, before
  # anything builds.
  compressionAttrs = c:
    let
      fail = field: msg: throw "nixpush: ${field}: ${msg}";
      maxLevel = { zstd = 22; gzip = 9; };
      forms = ''"none", "zstd", "gzip" or { algorithm = "zstd"; level = 19; }'';
      algorithms = ''"zstd", "gzip" or "none"'';
      unknown = builtins.attrNames (removeAttrs c [ "algorithm" "level" ]);
      algorithm = c.algorithm or (fail "compression.algorithm" "missing (${algorithms})");
      level = c.level;
      checked =
        if unknown != [ ] then
          fail "compression.${builtins.head unknown}" "unknown attribute (compression takes algorithm and level)"
        else if algorithm == "none" then
          (if c ? level then fail "compression.level" "given, but algorithm is \"none\"" else { })
        else if !(builtins.isString algorithm && maxLevel ? ${algorithm}) then
          fail "compression.algorithm" "${builtins.toJSON algorithm} is not ${algorithms}"
        else if !(c ? level) then { compression = { inherit algorithm; }; }
        else if !(builtins.isInt level) then fail "compression.level" "${builtins.toJSON level} is not an integer"
        else if level < 1 || level > maxLevel.${algorithm} then
          fail "compression.level" "${toString level} is not a ${algorithm} level (1 to ${toString maxLevel.${algorithm}}; leave level out for ${algorithm}'s default)"
        else { compression = { inherit algorithm level; }; };
    in
    if c == null || c == "none" then { }
    else if builtins.isString c then
      (if maxLevel ? ${c} then { compression.algorithm = c; } else fail "compression" "${builtins.toJSON c} is not ${forms}")
    else if builtins.isAttrs c then checked
    else fail "compression" "a ${builtins.typeOf c} is not ${forms}";

  buildLayer =
    { deps ? [ ]
    , copyToRoot ? [ ]
    , layers ? [ ]
    , maxLayers ? 1
    , perms ? [ ]
    , metadata ? { }
    , mtime ? defaultTime
    , compression ? "none"
    }:
    builtins.derivation ({
      name = "nixpush-layer.json";
      inherit system;
      builder = exe;
      args = [ "layer" ];
      __structuredAttrs = true;
      exportReferencesGraph.closure = deps ++ copyToRoot;
      maxLayers = checkMaxLayers maxLayers;
      inherit deps copyToRoot layers perms metadata mtime;
    } // compressionAttrs compression);

  buildImage =
    { name
    , tag ? null
    , config ? { }
    , copyToRoot ? [ ]
    , layers ? [ ]
    , maxLayers ? 1
    , perms ? [ ]
    , created ? defaultTime
    , mtime ? defaultTime
    , arch ? archOf system
    , os ? "linux"
    , compression ? "none"
    , fromImage ? null
    }:
    let
      carrier = configCarrier config;
      drv = builtins.derivation ({
        name = "image-${safeName name}.json";
        inherit system;
        builder = exe;
        args = [ "image" ];
        __structuredAttrs = true;
        exportReferencesGraph.closure = copyToRoot ++ [ carrier ];
        imageName = name;
        configRefs = carrier;
        maxLayers = checkMaxLayers maxLayers;
        inherit config copyToRoot layers perms created mtime arch os;
      } // (if tag == null then { } else { imageTag = tag; })
        // (if fromImage == null then { } else { fromImage = toStore "base" fromImage; })
        // compressionAttrs compression);
    in
    # copyToRegistry, copyTo, copyToPodman, copyToDockerDaemon: nix/apps.nix.
    withApps (drv // {
      imageName = name;
      # Without an explicit tag, the description has none: the tag is the
      # hash part of its store path, known only once its inputs are.
      imageTag = if tag == null then hashPart drv.outPath else tag;
    });
in
{
  inherit buildLayer buildImage;
  inherit (import ./pull.nix { inherit exe system archOf safeName; }) pullImage pullImageFromLock pullImageFromLockWith;
  plan = import ./plan.nix { inherit exe system; };
}
