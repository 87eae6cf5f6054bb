package api

import (
	"bufio"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"io"
	"os"
	"strings"
)

// Role is what a bearer token may do.
type Role int

// Roles: a read-only token reads everything (secrets are never returned
// to anyone); an admin token also writes and runs operations.
const (
	RoleNone Role = iota
	RoleRead
	RoleAdmin
)

func (r Role) String() string {
	switch r {
	case RoleRead:
		return "read"
	case RoleAdmin:
		return "admin"
	}
	return "none"
}

// ParseRole reads "read" (also "read-only", "readonly", "ro") or "admin".
func ParseRole(s string) (Role, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "read", "read-only", "readonly", "ro":
		return RoleRead, nil
	case "admin", "rw":
		return RoleAdmin, nil
	}
	return RoleNone, fmt.Errorf("role %q: want read or admin", s)
}

// Tokens holds the accepted bearer tokens (as SHA-256 digests) and their
// roles and names.
type Tokens struct {
	list []token
}

type token struct {
	digest [32]byte
	role   Role
	name   string
}

// MinTokenLength is the shortest token accepted (16 characters).
const MinTokenLength = 16

// Add accepts tok with role under name (shown in logs, never the token).
func (t *Tokens) Add(tok string, role Role, name string) error {
	if len(tok) < MinTokenLength {
		return fmt.Errorf("token %s: shorter than %d characters", name, MinTokenLength)
	}
	if strings.ContainsAny(tok, " \t\r\n") {
		return fmt.Errorf("token %s: contains white space", name)
	}
	if role != RoleRead && role != RoleAdmin {
		return fmt.Errorf("token %s: no role", name)
	}
	t.list = append(t.list, token{digest: sha256.Sum256([]byte(tok)), role: role, name: name})
	return nil
}

// Len is the number of tokens.
func (t *Tokens) Len() int { return len(t.list) }

// Lookup returns the role and name of tok (RoleNone when unknown). The
// comparison takes the same time whichever token matches.
func (t *Tokens) Lookup(tok string) (Role, string) {
	d := sha256.Sum256([]byte(tok))
	role, name := RoleNone, ""
	for _, x := range t.list {
		if subtle.ConstantTimeCompare(d[:], x.digest[:]) == 1 {
			role, name = x.role, x.name
		}
	}
	return role, name
}

// ReadTokens adds the tokens of a token file: one per line,
// "ROLE TOKEN [NAME]", ROLE read or admin; blank lines and lines starting
// with # are skipped.
func (t *Tokens) ReadTokens(r io.Reader, source string) error {
	sc := bufio.NewScanner(r)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 || len(f) > 3 {
			return fmt.Errorf("%s:%d: want ROLE TOKEN [NAME]", source, n)
		}
		role, err := ParseRole(f[0])
		if err != nil {
			return fmt.Errorf("%s:%d: %v", source, n, err)
		}
		name := fmt.Sprintf("%s:%d", source, n)
		if len(f) == 3 {
			name = f[2]
		}
		if err := t.Add(f[1], role, name); err != nil {
			return fmt.Errorf("%s:%d: %v", source, n, err)
		}
	}
	return sc.Err()
}

// ReadTokenFile is ReadTokens on a file.
func (t *Tokens) ReadTokenFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return t.ReadTokens(f, path)
}
