// Package users writes the files that give an image its users and
// groups: etc/passwd, etc/group, etc/shadow (every account locked),
// etc/nsswitch.conf, and an empty home directory for each user that asks
// for one. nix/users.nix (np.users) is its Nix side: it fills in the
// defaults, runs "nixpush users" as the builder of a small derivation
// whose output is copied to "/" of the image, and adds the perms that
// make each home directory its user's.
//
// Every field arrives filled in; Write checks them all and renders them
// in a fixed order (users by uid, then name; groups by gid, then name),
// so the files depend only on the Spec:
//
//   - names: 1 to 32 characters of [a-z0-9_-], not starting with "-" or a
//     digit (the portable subset useradd accepts);
//   - uid, gid: 0 to 4294967294 (4294967295 is (uid_t)-1); two users may
//     not share a uid, nor two groups a gid;
//   - home: a clean absolute path of [A-Za-z0-9._/-]; with createHome it
//     may not be "/" nor under /nix;
//   - shell, description: no ":" and no newline;
//   - a user's gid that no group has makes a group of the user's name
//     (a user private group, as useradd does); groups lists supplementary
//     groups by name, and each must exist.
//
// The shadow entries are "name:!:::::::": locked, no password, no aging.
package users
