package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/nixpush/nixpush/transport/registry"
)

// Where passwords come from when the arguments name only a user. Unlike an
// argument, stdin and the environment are not visible to other users of
// the machine (/proc/PID/cmdline).
const (
	envDestPassword = "NIXPUSH_DEST_PASSWORD"
	envSrcPassword  = "NIXPUSH_SRC_PASSWORD"
)

// passwordSource is where one side's missing password comes from: stdin
// when its flag was given, else its environment variable, else a prompt
// on the terminal.
type passwordSource struct {
	flag  string // e.g. dest-password-stdin
	stdin bool   // the flag was given
	env   string
	used  int // passwords taken from stdin or env
}

// passwords hands out the passwords the arguments leave out.
type passwords struct {
	in     io.Reader
	prompt io.Writer
}

// get returns the password of user (at host, when known) from src.
// Stdin and the environment hold one password each: a second credential
// that needs one from there is an error, never a reused secret.
func (p *passwords) get(src *passwordSource, user, host string) (string, error) {
	who := user
	if host != "" {
		who += " at " + host
	}
	switch {
	case src.stdin:
		if src.used > 0 {
			return "", fmt.Errorf("password for %s: --%s gives one password and another credential already took it; use --authfile for several", who, src.flag)
		}
		src.used++
		b, err := io.ReadAll(p.in)
		if err != nil {
			return "", fmt.Errorf("reading the password for %s from stdin: %w", who, err)
		}
		pw := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
		if pw == "" {
			return "", fmt.Errorf("password for %s: stdin is empty (--%s)", who, src.flag)
		}
		return pw, nil
	case os.Getenv(src.env) != "":
		if src.used > 0 {
			return "", fmt.Errorf("password for %s: $%s gives one password and another credential already took it; use --authfile for several", who, src.env)
		}
		src.used++
		return os.Getenv(src.env), nil
	}
	if f, ok := p.in.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprintf(p.prompt, "Password for %s: ", who)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(p.prompt)
		if err != nil {
			return "", fmt.Errorf("reading the password for %s: %w", who, err)
		}
		if len(b) == 0 {
			return "", fmt.Errorf("password for %s: empty", who)
		}
		return string(b), nil
	}
	return "", fmt.Errorf("no password for %s: pipe it to --%s or set $%s (only a terminal is asked for it)", who, src.flag, src.env)
}

// checkUsed refuses a --*-password-stdin flag that no credential needed,
// rather than leave the secret unread and the login silently missing.
func (src *passwordSource) checkUsed() error {
	if src.stdin && src.used == 0 {
		return fmt.Errorf("--%s: no credential without a password to read it for (give the user with --dest-creds USER, --src-creds USER or --creds-for HOST=USER)", src.flag)
	}
	return nil
}

// userPassword reads skopeo's USER[:PASSWORD]; a missing or empty password
// comes from src.
func (p *passwords) userPassword(flag, s string, src *passwordSource) (user, password string, err error) {
	user, password, err = registry.ParseCredentials(s)
	if err != nil {
		return "", "", fmt.Errorf("--%s: %w", flag, err)
	}
	if password == "" {
		if password, err = p.get(src, user, ""); err != nil {
			return "", "", err
		}
	}
	return user, password, nil
}

// credsFor reads --creds-for HOST=USER values; the passwords come from
// src, never from the arguments.
func (p *passwords) credsFor(values []string, src *passwordSource) ([]registry.Option, error) {
	var opts []registry.Option
	for _, v := range values {
		host, user, ok := strings.Cut(v, "=")
		if !ok || host == "" || user == "" {
			return nil, fmt.Errorf("--creds-for %s: want HOST=USER", redactPassword(v))
		}
		if strings.Contains(user, ":") {
			return nil, fmt.Errorf("--creds-for %s: no password in arguments, where other users can read it; pipe it to --%s or set $%s", redactPassword(v), src.flag, src.env)
		}
		password, err := p.get(src, user, host)
		if err != nil {
			return nil, err
		}
		opts = append(opts, registry.WithCredentialsFor(host, user, password))
	}
	return opts, nil
}

// redactPassword shows a USER:PASSWORD value without its password.
func redactPassword(s string) string {
	if before, _, ok := strings.Cut(s, ":"); ok {
		return before + ":REDACTED"
	}
	return s
}

// errBothStdin: stdin holds one password.
var errBothStdin = errors.New("--src-password-stdin and --dest-password-stdin: stdin holds one password; give the other in $" + envSrcPassword + " or $" + envDestPassword)
