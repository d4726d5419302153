# A stand-in for nixpkgs that exists ONLY because nixpkgs cannot be
# downloaded on the machine nixpush is developed on. It provides just what
# nixpush's flake.nix uses, with builtins and two prebuilt static binaries
# in ./prebuilt/bin (nixpush from "go build", busybox); see README.md.
# Never use it for anything but testing the flake here.
{
  description = "stand-in for nixpkgs (tests only, nixpkgs unreachable)";

  outputs = { self }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];

      lib = {
        genAttrs = names: f: builtins.listToAttrs (map (name: { inherit name; value = f name; }) names);
        versionAtLeast = v: min: builtins.compareVersions v min >= 0;
      };

      prebuilt = builtins.path { path = ./prebuilt; name = "standin-prebuilt"; };

      pkgsFor = system:
        let
          # A derivation run by the prebuilt busybox's sh.
          run = name: script: builtins.derivation {
            inherit name system;
            builder = "${prebuilt}/bin/busybox";
            args = [ "sh" "-e" "-c" script ];
          };

          busybox = run "busybox-static" ''
            ${prebuilt}/bin/busybox mkdir -p $out/bin
            ${prebuilt}/bin/busybox cp ${prebuilt}/bin/busybox $out/bin/busybox
          '';

          # What nixpkgs' buildGoModule would need to build nixpush
          # statically; anything else is a mistake in flake.nix.
          check = args: cond: msg:
            if cond then true else throw "stand-in buildGoModule (${args.pname or "?"}): ${msg}";
          buildGoModuleWith = goVersion: args:
            assert check args (args ? src && args ? pname && args ? version) "needs src, pname and version";
            assert check args (builtins.match "sha256-[A-Za-z0-9+/]{43}=" (args.vendorHash or "") != null)
              "vendorHash must be an SRI sha256 hash";
            assert check args ((args.env.CGO_ENABLED or null) == 0) "env.CGO_ENABLED must be 0 (a static binary)";
            assert check args (!(args ? CGO_ENABLED)) "CGO_ENABLED belongs in env";
            assert check args (builtins.elem "containers_image_openpgp" (args.tags or [ ])) "needs the containers_image_openpgp tag";
            assert check args ((args.subPackages or null) == [ "cmd/nixpush" ]) "subPackages must be [ \"cmd/nixpush\" ]";
            (run "${args.pname}-${args.version}" ''
              # The stand-in does not compile: it installs the binary that
              # "go build" made outside Nix (go ${goVersion} there).
              # The source must be the module, filtered as flake.nix says.
              ${prebuilt}/bin/busybox test -f ${args.src}/go.mod -a -f ${args.src}/cmd/nixpush/main.go
              ${prebuilt}/bin/busybox test ! -e ${args.src}/docs -a ! -e ${args.src}/flake.nix
              ${prebuilt}/bin/busybox mkdir -p $out/bin
              ${prebuilt}/bin/busybox cp ${prebuilt}/bin/nixpush $out/bin/nixpush
              $out/bin/nixpush version
            '') // {
              inherit (args) pname version;
              meta = args.meta or { };
            };

          # A named placeholder for a package the flake only lists.
          placeholder = name: { inherit name; standin = true; };
        in
        {
          inherit busybox;
          go = placeholder "go" // { version = "1.26.8"; };
          go_1_26 = placeholder "go" // { version = "1.26.8"; };
          buildGoModule = buildGoModuleWith "1.26.8";
          buildGo126Module = buildGoModuleWith "1.26.8";
          pkgsStatic = { inherit busybox; };
          gopls = placeholder "gopls";
          skopeo = placeholder "skopeo";
          umoci = placeholder "umoci";
          mkShell = args: run "nix-shell" ''
            echo "stand-in devShell: ${toString (map (p: p.name) (args.packages or [ ]))}" > $out
          '' // { inherit (args) packages; };
        };
    in
    {
      inherit lib;
      legacyPackages = lib.genAttrs systems pkgsFor;
    };
}
