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

  # Perms that copyToRoot entries carry (np.users, the Nix database):
  # they come first, so the caller's perms win.
  carriedPerms = copyToRoot: builtins.concatLists (map (x: x.nixpushPerms or [ ]) copyToRoot);

  # Attributes only set when used, so that an image without them keeps its
  # derivation (and so its default tag).
  optionalAttrs = cond: attrs: if cond then attrs else { };

  checkIgnore = ignore:
    if builtins.isList ignore then ignore
    else throw "nixpush: ignore must be a list of derivations or store paths";

  checkId = field: n:
    if builtins.isInt n && n >= 0 && n <= 4294967294 then n
    else throw "nixpush: ${field}: ${builtins.toJSON n} is not an integer from 0 to 4294967294";

  # The Nix database of an image (initializeNixDatabase): a store path
  # holding nix/var/nix/db, copied to / of the image. Its builder computes
  # the image's store paths from the image's own attributes, as the image
  # builder does; its exportReferencesGraph adds the layer files, so that
  # it knows their paths' references too. It refers to exactly the paths
  # it registers, which the image builder checks.
  # With fromImage, it gets the base too: a nixpush base's store paths
  # are the image's, so the database registers them (the base's closure
  # gives their references).
  nixDatabase = { copyToRoot, layers, carrier, mtime, extra, nixUid, nixGid, fromImage }:
    let
      base = if fromImage == null then [ ] else [ fromImage ];
      db = builtins.derivation ({
        name = "nixpush-nix-database";
        inherit system;
        builder = exe;
        args = [ "nix-db" ];
        __structuredAttrs = true;
        exportReferencesGraph.closure = copyToRoot ++ [ carrier ] ++ layers ++ base;
        configRefs = carrier;
        inherit copyToRoot layers mtime;
      } // extra // (if fromImage == null then { } else { inherit fromImage; }));
    in
    db // {
      # Nix needs to write its database and create /nix/var/nix/*: the
      # database's directories and files get usual modes, and nixUid and
      # nixGid own /nix, the store paths and the database.
      nixpushPerms = [
        { regex = "/nix(/.*)?"; uid = nixUid; gid = nixGid; }
        { path = db; regex = "/nix|/nix/var|/nix/var/nix|/nix/var/nix/db|/nix/var/nix/gcroots|/nix/var/nix/gcroots/docker"; mode = "0755"; }
        { path = db; regex = "/nix/var/nix/db/(db\\.sqlite|schema)"; mode = "0644"; }
      ];
    };

  buildLayer =
    { deps ? [ ]
    , copyToRoot ? [ ]
    , layers ? [ ]
    , maxLayers ? 1
    , perms ? [ ]
    , metadata ? { }
    , mtime ? defaultTime
    , compression ? "none"
    , ignore ? [ ]
    }:
    builtins.derivation ({
      name = "nixpush-layer.json";
      inherit system;
      builder = exe;
      args = [ "layer" ];
      __structuredAttrs = true;
      exportReferencesGraph.closure = deps ++ copyToRoot;
      maxLayers = checkMaxLayers maxLayers;
      perms = carriedPerms copyToRoot ++ perms;
      inherit deps copyToRoot layers metadata mtime;
    } // compressionAttrs compression
      // optionalAttrs (ignore != [ ]) { ignore = checkIgnore ignore; });

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
    , annotations ? { }
    , includeStorePaths ? true
    , ignore ? [ ]
    , initializeNixDatabase ? false
    , nixUid ? 0
    , nixGid ? 0
    , sbom ? true
    , fromImage ? null
    }:
    let
      carrier = configCarrier config;
      # What decides the image's store paths besides copyToRoot, layers
      # and the config; the Nix database's builder gets the same.
      contents =
        optionalAttrs (ignore != [ ]) { ignore = checkIgnore ignore; }
        // optionalAttrs (includeStorePaths != true) {
          includeStorePaths =
            if builtins.isBool includeStorePaths then includeStorePaths
            else throw "nixpush: includeStorePaths must be true or false";
        };
      base = if fromImage == null then null else toStore "base" fromImage;
      db = nixDatabase {
        inherit copyToRoot layers carrier mtime;
        fromImage = base;
        extra = contents;
        nixUid = checkId "nixUid" nixUid;
        nixGid = checkId "nixGid" nixGid;
      };
      withDB =
        if initializeNixDatabase == false then { }
        else if initializeNixDatabase != true then throw "nixpush: initializeNixDatabase must be true or false"
        else { nixDatabase = db; };
      copyToRoot' = copyToRoot ++ (if withDB ? nixDatabase then [ db ] else [ ]);
      # The SBOM is a second output, "sbom", an SPDX JSON file the
      # description records; layersClosure gives the builder the
      # references of the layer files' store paths, for its DEPENDS_ON.
      # Without it (sbom = false) the derivation is what it was before
      # SBOMs existed.
      sbomAttrs =
        if !(builtins.isBool sbom) then throw "nixpush: sbom must be true or false"
        else if !sbom then { }
        else { outputs = [ "out" "sbom" ]; };
      sbomGraphs = if sbom == true && layers != [ ] then { layersClosure = layers; } else { };
      drv = builtins.derivation ({
        name = "image-${safeName name}.json";
        inherit system;
        builder = exe;
        args = [ "image" ];
        __structuredAttrs = true;
        exportReferencesGraph = { closure = copyToRoot' ++ [ carrier ]; } // sbomGraphs;
        imageName = name;
        configRefs = carrier;
        maxLayers = checkMaxLayers maxLayers;
        copyToRoot = copyToRoot';
        perms = carriedPerms copyToRoot' ++ perms;
        inherit config layers created mtime arch os;
      } // (if tag == null then { } else { imageTag = tag; })
        // (if base == null then { } else { fromImage = base; })
        // compressionAttrs compression
        // contents
        // withDB
        # Left out when empty, so an image without annotations has the
        # derivation it had before they existed.
        // (if annotations == { } then { } else { inherit annotations; })
        // sbomAttrs);
    in
    # copyToRegistry, copyTo, copyToPodman, copyToDockerDaemon: nix/apps.nix.
    withApps (drv // withDB // {
      imageName = name;
      # Without an explicit tag, the description has none: the tag is the
      # hash part of its store path, known only once its inputs are.
      imageTag = if tag == null then hashPart drv.outPath else tag;
    });
  # An index description: one tag for the images of several platforms
  # (docs/nix-api.md, buildIndex). The builder reads each image's
  # description and writes the index with each manifest digest and the
  # index's own; its references are the image descriptions.
  buildIndex =
    { name
    , tag ? null
    , images
    , annotations ? { }
    }:
    let
      drv =
        if !(builtins.isList images) || images == [ ] then throw "nixpush buildIndex: images must be a non-empty list of buildImage results"
        else builtins.derivation ({
          name = "index-${safeName name}.json";
          inherit system;
          builder = exe;
          args = [ "index" ];
          __structuredAttrs = true;
          indexName = name;
          images = map (i: "${i}") images;
          inherit annotations;
        } // (if tag == null then { } else { imageTag = tag; }));
    in
    withApps (drv // {
      imageName = name;
      imageTag = if tag == null then hashPart drv.outPath else tag;
      inherit images;
    });
in
{
  inherit buildLayer buildImage buildIndex;
  inherit (import ./pull.nix { inherit exe system archOf safeName; }) pullImage pullImageFromLock pullImageFromLockWith;
  plan = import ./plan.nix { inherit exe system; };
  users = import ./users.nix { inherit exe system; };
}
