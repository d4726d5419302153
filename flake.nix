{
  description = "nixpush: build container images with Nix, push them without tarballs";

  inputs.nixpkgs.url = "github:nixos/nixpkgs/nixos-unstable";

  outputs = { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAllSystems = f: lib.genAttrs systems (system: f system nixpkgs.legacyPackages.${system});

      # go.mod's go line is the oldest Go that builds nixpush: use
      # nixpkgs' default Go when it is that new, else the newer Go 1.26.
      goMinimum = builtins.head (builtins.match ".*\ngo ([0-9.]+)\n.*" (builtins.readFile ./go.mod));
      defaultGoFits = pkgs: lib.versionAtLeast pkgs.go.version goMinimum;
      goFor = pkgs: if defaultGoFits pkgs then pkgs.go else pkgs.go_1_26;
      buildGoModuleFor = pkgs: if defaultGoFits pkgs then pkgs.buildGoModule else pkgs.buildGo126Module;

      # Everything but what cannot change the binary (or its vendorHash).
      src = builtins.path {
        path = ./.;
        name = "nixpush-source";
        filter = path: _type:
          !(builtins.elem (baseNameOf path) [ ".ci" ".work" "docs" "flake.nix" "flake.lock" "result" ]
            || builtins.match ".*\\.md" path != null);
      };
      version = "unstable-" + builtins.substring 0 8 (self.lastModifiedDate or "19700101");

      nixpushFor = pkgs: import ./nix/package.nix {
        buildGoModule = buildGoModuleFor pkgs;
        inherit src version;
      };

      # The Nix library (nix/default.nix) wired to the package.
      libFor = system: import ./nix {
        nixpush = self.packages.${system}.nixpush;
        inherit system;
      };

      examplesFor = system: pkgs: compression: import ./nix/examples {
        nixpush = self.packages.${system}.nixpush;
        busybox = pkgs.pkgsStatic.busybox;
        inherit system compression;
      };
    in
    {
      # nixpush.lib.${system}.buildImage / buildLayer / buildIndex / plan:
      # docs/nix-api.md.
      lib = lib.genAttrs systems libFor;

      packages = forAllSystems (system: pkgs:
        let
          nixpush = nixpushFor pkgs;
          ex = examplesFor system pkgs "none";
        in
        {
          inherit nixpush;
          default = nixpush;
          # busybox in a root file system, one layer.
          example-minimal = ex.minimal;
          # A shared busybox layer (buildLayer) under an application.
          example-layered = ex.layered;
          # The same with zstd-compressed layers (tar+zstd, description
          # version 2): the same tars, smaller blobs.
          example-layered-zstd = (examplesFor system pkgs "zstd").layered;
          # An OCI index of the layered application for amd64 and arm64
          # (buildIndex; the same files for both, the architecture set).
          example-index = ex.index;
        });

      apps = forAllSystems (system: _pkgs:
        let
          nixpush = { type = "app"; program = "${self.packages.${system}.nixpush}/bin/nixpush"; };
          layered = self.packages.${system}.example-layered;
        in
        {
          inherit nixpush;
          default = nixpush;
          # nix run .#push -- DESTINATION [nixpush copy flags], e.g.
          #   nix run .#push -- docker://127.0.0.1:5000/layered:v1 --dest-tls-verify=false
          push = layered.copyTo;
        });

      checks = forAllSystems (system: _pkgs: {
        inherit (self.packages.${system}) nixpush example-minimal example-layered example-layered-zstd example-index;
      });

      devShells = forAllSystems (system: pkgs: {
        default = pkgs.mkShell {
          packages = [
            (goFor pkgs)
            pkgs.gopls
            pkgs.skopeo
            pkgs.umoci
            pkgs.pkgsStatic.busybox
          ];
          # What README.md's build command sets.
          CGO_ENABLED = "0";
          GOFLAGS = "-tags=containers_image_openpgp";
        };
      });
    };
}
