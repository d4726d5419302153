package users

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/nixpush/nixpush/internal/jsonfield"
	"github.com/nixpush/nixpush/internal/nixattrs"
)

// User is one account.
type User struct {
	UID         int64    `json:"uid"`
	GID         int64    `json:"gid"`
	Home        string   `json:"home"`
	CreateHome  bool     `json:"createHome"`
	Shell       string   `json:"shell"`
	Description string   `json:"description"`
	Groups      []string `json:"groups"`
}

// Group is one group; its members are the users that list it in Groups.
type Group struct {
	GID int64 `json:"gid"`
}

// Spec is what np.users passes: users and groups by name.
type Spec struct {
	Users  map[string]User  `json:"users"`
	Groups map[string]Group `json:"groups"`
}

// ErrInvalid is wrapped by every error about a field of a Spec.
var ErrInvalid = errors.New("invalid")

// MaxID is the largest uid or gid.
const MaxID = 1<<32 - 2

var (
	nameRe = regexp.MustCompile(`^[a-z_][a-z0-9_-]{0,31}$`)
	homeRe = regexp.MustCompile(`^/[A-Za-z0-9._/-]*$`)
)

// NSSwitch is etc/nsswitch.conf: accounts from the files, host names
// from /etc/hosts, then DNS.
const NSSwitch = `passwd:    files
group:     files
shadow:    files
hosts:     files dns
networks:  files
protocols: files
services:  files
`

func invalid(field, format string, a ...any) error {
	return fmt.Errorf("%s: %s: %w", field, fmt.Sprintf(format, a...), ErrInvalid)
}

func checkText(field, s string) error {
	if strings.ContainsAny(s, ":\n") {
		return invalid(field, "%q holds a \":\" or a newline", s)
	}
	return nil
}

type named[T any] struct {
	name string
	v    T
}

// Files checks s and returns the contents of etc/passwd, etc/group and
// etc/shadow, and the home directories to create.
func (s Spec) Files() (passwd, group, shadow string, homes []string, err error) {
	var us []named[User]
	uids := map[int64]string{}
	for name, u := range s.Users {
		f := "users." + name
		switch {
		case !nameRe.MatchString(name):
			return "", "", "", nil, invalid(f, "%q is not a user name (1 to 32 of a-z, 0-9, _ and -, not starting with - or a digit)", name)
		case u.UID < 0 || u.UID > MaxID:
			return "", "", "", nil, invalid(f+".uid", "%d is not from 0 to %d", u.UID, int64(MaxID))
		case u.GID < 0 || u.GID > MaxID:
			return "", "", "", nil, invalid(f+".gid", "%d is not from 0 to %d", u.GID, int64(MaxID))
		case !homeRe.MatchString(u.Home) || path.Clean(u.Home) != u.Home:
			return "", "", "", nil, invalid(f+".home", "%q is not a clean absolute path of A-Z, a-z, 0-9, ., _, / and -", u.Home)
		case u.CreateHome && (u.Home == "/" || u.Home == "/nix" || strings.HasPrefix(u.Home, "/nix/")):
			return "", "", "", nil, invalid(f+".home", "%q cannot be created as a home directory (set createHome = false)", u.Home)
		}
		if other, dup := uids[u.UID]; dup {
			return "", "", "", nil, invalid(f+".uid", "%d is also the uid of %q", u.UID, other)
		}
		uids[u.UID] = name
		if err := checkText(f+".shell", u.Shell); err != nil {
			return "", "", "", nil, err
		}
		if err := checkText(f+".description", u.Description); err != nil {
			return "", "", "", nil, err
		}
		us = append(us, named[User]{name, u})
	}
	slices.SortFunc(us, func(a, b named[User]) int {
		return cmp.Or(cmp.Compare(a.v.UID, b.v.UID), strings.Compare(a.name, b.name))
	})

	groups := map[string]int64{}
	gids := map[int64]string{}
	for name, g := range s.Groups {
		f := "groups." + name
		if !nameRe.MatchString(name) {
			return "", "", "", nil, invalid(f, "%q is not a group name (1 to 32 of a-z, 0-9, _ and -, not starting with - or a digit)", name)
		}
		if g.GID < 0 || g.GID > MaxID {
			return "", "", "", nil, invalid(f+".gid", "%d is not from 0 to %d", g.GID, int64(MaxID))
		}
		if other, dup := gids[g.GID]; dup {
			return "", "", "", nil, invalid(f+".gid", "%d is also the gid of %q", g.GID, other)
		}
		groups[name], gids[g.GID] = g.GID, name
	}
	// User private groups, for a gid no group has.
	for _, u := range us {
		if _, ok := gids[u.v.GID]; ok {
			continue
		}
		if gid, taken := groups[u.name]; taken {
			return "", "", "", nil, invalid("users."+u.name+".gid", "%d is no group's gid, and the group %q (for a user private group) has gid %d", u.v.GID, u.name, gid)
		}
		groups[u.name], gids[u.v.GID] = u.v.GID, u.name
	}
	members := map[string][]string{}
	for _, u := range us {
		for i, g := range u.v.Groups {
			if _, ok := groups[g]; !ok {
				return "", "", "", nil, invalid(fmt.Sprintf("users.%s.groups[%d]", u.name, i), "no group %q", g)
			}
			if !slices.Contains(members[g], u.name) {
				members[g] = append(members[g], u.name)
			}
		}
	}

	var pw, sh, gr strings.Builder
	for _, u := range us {
		fmt.Fprintf(&pw, "%s:x:%d:%d:%s:%s:%s\n", u.name, u.v.UID, u.v.GID, u.v.Description, u.v.Home, u.v.Shell)
		fmt.Fprintf(&sh, "%s:!:::::::\n", u.name)
		if u.v.CreateHome {
			homes = append(homes, u.v.Home)
		}
	}
	var gs []named[int64]
	for name, gid := range groups {
		gs = append(gs, named[int64]{name, gid})
	}
	slices.SortFunc(gs, func(a, b named[int64]) int { return cmp.Or(cmp.Compare(a.v, b.v), strings.Compare(a.name, b.name)) })
	for _, g := range gs {
		m := members[g.name]
		slices.Sort(m)
		fmt.Fprintf(&gr, "%s:x:%d:%s\n", g.name, g.v, strings.Join(m, ","))
	}
	slices.Sort(homes)
	return pw.String(), gr.String(), sh.String(), homes, nil
}

// Write checks s and writes its files below out (which must not hold
// them yet): etc/passwd, etc/group, etc/shadow, etc/nsswitch.conf and the
// home directories.
func Write(out string, s Spec) error {
	passwd, group, shadow, homes, err := s.Files()
	if err != nil {
		return err
	}
	etc := filepath.Join(out, "etc")
	if err := os.MkdirAll(etc, 0o755); err != nil {
		return fmt.Errorf("writing users: %w", err)
	}
	for _, f := range []struct{ name, text string }{
		{"passwd", passwd}, {"group", group}, {"shadow", shadow}, {"nsswitch.conf", NSSwitch},
	} {
		if err := os.WriteFile(filepath.Join(etc, f.name), []byte(f.text), 0o644); err != nil {
			return fmt.Errorf("writing users: %w", err)
		}
	}
	for _, h := range homes {
		if err := os.MkdirAll(filepath.Join(out, filepath.FromSlash(h)), 0o755); err != nil {
			return fmt.Errorf("writing users: home %s: %w", h, err)
		}
	}
	return nil
}

// WriteFile reads the structured attributes file attrsFile ("users" and
// "groups", decoded strictly) and writes the files to its outputs.out.
func WriteFile(attrsFile string) error {
	var raw struct {
		Users  json.RawMessage `json:"users"`
		Groups json.RawMessage `json:"groups"`
	}
	_, out, err := nixattrs.Read(attrsFile, &raw)
	if err != nil {
		return err
	}
	var s Spec
	if len(raw.Users) > 0 {
		if err := jsonfield.Prefix("users", jsonfield.Strict(raw.Users, &s.Users)); err != nil {
			return err
		}
	}
	if len(raw.Groups) > 0 {
		if err := jsonfield.Prefix("groups", jsonfield.Strict(raw.Groups, &s.Groups)); err != nil {
			return err
		}
	}
	return Write(out, s)
}
