package users_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nixpush/nixpush/layers/users"
)

func root() users.User {
	return users.User{UID: 0, GID: 0, Home: "/root", CreateHome: true, Shell: "/bin/sh", Description: "root"}
}

func app() users.User {
	return users.User{UID: 1000, GID: 1000, Home: "/home/app", CreateHome: true, Shell: "/sbin/nologin", Description: "app", Groups: []string{"wheel", "audio"}}
}

func spec() users.Spec {
	return users.Spec{
		Users: map[string]users.User{
			"root":   root(),
			"app":    app(),
			"daemon": {UID: 2, GID: 2, Home: "/var/empty", Shell: "/sbin/nologin", Groups: []string{"audio"}},
		},
		Groups: map[string]users.Group{"root": {GID: 0}, "wheel": {GID: 10}, "audio": {GID: 29}, "daemon": {GID: 2}},
	}
}

func TestFiles(t *testing.T) {
	passwd, group, shadow, homes, err := spec().Files()
	if err != nil {
		t.Fatal(err)
	}
	if want := "root:x:0:0:root:/root:/bin/sh\ndaemon:x:2:2::/var/empty:/sbin/nologin\napp:x:1000:1000:app:/home/app:/sbin/nologin\n"; passwd != want {
		t.Errorf("passwd:\n%s\nwant\n%s", passwd, want)
	}
	// app's gid 1000 is no group's: a user private group "app".
	if want := "root:x:0:\ndaemon:x:2:\nwheel:x:10:app\naudio:x:29:app,daemon\napp:x:1000:\n"; group != want {
		t.Errorf("group:\n%s\nwant\n%s", group, want)
	}
	if want := "root:!:::::::\ndaemon:!:::::::\napp:!:::::::\n"; shadow != want {
		t.Errorf("shadow:\n%s\nwant\n%s", shadow, want)
	}
	if want := "/home/app /root"; strings.Join(homes, " ") != want {
		t.Errorf("homes %v, want %s", homes, want)
	}
}

func TestWrite(t *testing.T) {
	out := t.TempDir()
	if err := users.Write(out, spec()); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"etc/passwd", "etc/group", "etc/shadow", "etc/nsswitch.conf"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Error(err)
		}
	}
	for _, d := range []string{"home/app", "root"} {
		if fi, err := os.Stat(filepath.Join(out, d)); err != nil || !fi.IsDir() {
			t.Errorf("%s: %v, %v", d, fi, err)
		}
	}
	if _, err := os.Stat(filepath.Join(out, "var/empty")); err == nil {
		t.Error("var/empty created, but daemon has createHome = false")
	}
}

func TestInvalid(t *testing.T) {
	tests := []struct {
		name, field string
		change      func(s *users.Spec)
	}{
		{"bad user name", "users.App", func(s *users.Spec) { s.Users["App"] = app() }},
		{"uid too large", "users.app.uid", func(s *users.Spec) { u := app(); u.UID = 1 << 32; s.Users["app"] = u }},
		{"uid twice", "users.", func(s *users.Spec) { u := app(); u.UID = 0; s.Users["app"] = u }},
		{"gid twice", "groups.", func(s *users.Spec) { s.Groups["staff"] = users.Group{GID: 10} }},
		{"relative home", "users.app.home", func(s *users.Spec) { u := app(); u.Home = "home/app"; s.Users["app"] = u }},
		{"unclean home", "users.app.home", func(s *users.Spec) { u := app(); u.Home = "/home/../app"; s.Users["app"] = u }},
		{"home in the store", "users.app.home", func(s *users.Spec) { u := app(); u.Home = "/nix/store"; s.Users["app"] = u }},
		{"home /", "users.app.home", func(s *users.Spec) { u := app(); u.Home = "/"; s.Users["app"] = u }},
		{"colon in shell", "users.app.shell", func(s *users.Spec) { u := app(); u.Shell = "/bin/sh:x"; s.Users["app"] = u }},
		{"newline in description", "users.app.description", func(s *users.Spec) { u := app(); u.Description = "a\nb"; s.Users["app"] = u }},
		{"unknown group", "users.app.groups[1]", func(s *users.Spec) {
			delete(s.Groups, "audio")
			s.Users["daemon"] = users.User{UID: 2, GID: 2, Home: "/"}
		}},
		{"private group name taken", "users.app.gid", func(s *users.Spec) { s.Groups["app"] = users.Group{GID: 5} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := spec()
			tt.change(&s)
			_, _, _, _, err := s.Files()
			if !errors.Is(err, users.ErrInvalid) {
				t.Fatalf("error %v, want ErrInvalid", err)
			}
			if !strings.HasPrefix(err.Error(), tt.field) {
				t.Errorf("error %q does not start with %q", err, tt.field)
			}
		})
	}
}
