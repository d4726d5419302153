# np.users: users and groups for an image, builtins only (see
# docs/nix-api.md, "Users"). The result is a derivation holding
# etc/passwd, etc/group, etc/shadow (locked accounts), etc/nsswitch.conf
# and each user's home directory, to put in copyToRoot; it carries the
# perms (nixpushPerms) that make each home its user's and give the files
# their usual modes, which buildImage and buildLayer add by themselves.
#
# Defaults are filled in here; the builder (nixpush users) checks every
# field again and renders the files.
#
#   exe:    the nixpush binary (a store path string)
#   system: the Nix system the files are written on
{ exe, system }:
{ users ? { }, groups ? { }, name ? "users" }:
let
  fail = field: msg: throw "nixpush: users: ${field}: ${msg}";

  userFields = [ "uid" "gid" "home" "createHome" "shell" "description" "groups" ];

  checkId = field: n:
    if builtins.isInt n && n >= 0 && n <= 4294967294 then n
    else fail field "${builtins.toJSON n} is not an integer from 0 to 4294967294";

  checkHome = field: h:
    if builtins.isString h && builtins.match "/[A-Za-z0-9._/-]*" h != null then h
    else fail field "${builtins.toJSON h} is not an absolute path of A-Z, a-z, 0-9, ., _, / and -";

  # Every field filled in: root's defaults differ from other users'.
  user = name: u:
    let
      f = "users.${name}";
      unknown = builtins.attrNames (removeAttrs u userFields);
      uid = checkId "${f}.uid" (u.uid or (if name == "root" then 0 else fail "${f}.uid" "missing"));
      home = checkHome "${f}.home" (u.home or (if name == "root" then "/root" else "/home/${name}"));
    in
    if !(builtins.isAttrs u) then fail f "a ${builtins.typeOf u} is not an attribute set of ${builtins.concatStringsSep ", " userFields}"
    else if unknown != [ ] then fail "${f}.${builtins.head unknown}" "unknown attribute (a user takes ${builtins.concatStringsSep ", " userFields})"
    else {
      inherit uid home;
      gid = checkId "${f}.gid" (u.gid or uid);
      createHome = u.createHome or true;
      shell = u.shell or (if name == "root" then "/bin/sh" else "/sbin/nologin");
      description = u.description or name;
      groups = u.groups or [ ];
    };

  group = name: g:
    if builtins.isAttrs g && builtins.attrNames g == [ "gid" ] then { gid = checkId "groups.${name}.gid" g.gid; }
    else fail "groups.${name}" "a group is { gid = …; }";

  all = builtins.mapAttrs user ({ root = { }; } // users);
  allGroups = builtins.mapAttrs group ({ root.gid = 0; } // groups);

  drv = builtins.derivation {
    inherit name system;
    builder = exe;
    args = [ "users" ];
    __structuredAttrs = true;
    users = all;
    groups = allGroups;
  };

  # Regex of one image path (checkHome allows only "." among the regex
  # metacharacters).
  exact = builtins.replaceStrings [ "." ] [ "\\." ];

  homes = builtins.filter (u: u.createHome) (builtins.attrValues all);
in
drv // {
  nixpushPerms = [
    # Directories the derivation provides (/etc, /home, …): 0755.
    { path = drv; regex = ".*"; mode = "0755"; }
    { path = drv; regex = "/etc/(passwd|group|nsswitch\\.conf)"; mode = "0644"; }
    { path = drv; regex = "/etc/shadow"; mode = "0640"; }
  ] ++ map
    (u: {
      path = drv;
      regex = exact u.home;
      uid = u.uid;
      gid = u.gid;
      mode = if u.uid == 0 then "0700" else "0755";
    })
    homes;
}
