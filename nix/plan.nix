# plan: a release plan for `nixpush push --plan`: which images go to which
# tags of which repositories and registries. Builtins only.
#
#   np.plan {
#     images = { app = appImage; worker = workerImage; };
#     registry = "registry.example.com/team";      # or a list of them
#     tags = [ "v1.2" "latest" ];                    # or name: image: [ … ]
#   }
#
# gives a JSON file, one entry per image (in attribute name order):
#   {"images": [{"image": "/nix/store/…-image-app.json",
#                "destinations": ["docker://registry.example.com/team/app:v1.2", …]}, …]}
#
# An image may also be a buildIndex result (an index description: one tag
# for several platforms), pushed whole.
#
# The file refers to every image description, so building the plan builds
# the images and keeps them alive.
{ exe, system }:
{ images
  # A registry, optionally with a path prefix ("ghcr.io/org"), or a list:
  # every image goes to each.
, registry
  # The repository of an image under the registry: by default the
  # attribute name.
, repository ? (name: image: name)
  # The tags of each image: a list for all, or a function name: image: list.
  # By default the image's own tag (buildImage's tag, else its hash).
, tags ? (name: image: [ (image.imageTag or (throw "nixpush plan: image ${name} has no imageTag; pass tags")) ])
  # More destinations of an image, as "docker://REGISTRY/REPO:TAG".
, extraDestinations ? (name: image: [ ])
, name ? "nixpush-plan.json"
}:
let
  registries = if builtins.isList registry then registry else [ registry ];
  tagsOf = n: image: if builtins.isFunction tags then tags n image else tags;
  entry = n:
    let
      image = images.${n};
      repo = repository n image;
    in
    {
      image = "${image}";
      destinations =
        builtins.concatMap (reg: map (tag: "docker://${reg}/${repo}:${tag}") (tagsOf n image)) registries
        ++ extraDestinations n image;
    };
  names = builtins.attrNames images;
in
if !(builtins.isAttrs images) || names == [ ] then throw "nixpush plan: images must be a non-empty attribute set"
else
  builtins.derivation {
    inherit name system;
    builder = exe;
    args = [ "write-plan" ];
    __structuredAttrs = true;
    plan.images = map entry names;
  }
