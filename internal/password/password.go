// Package password hashes and checks account passwords with argon2id, in the PHC string
// format ($argon2id$v=19$m=…,t=…,p=…$salt$hash), so parameters can be raised later without
// breaking stored hashes.
package password

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"

	"golang.org/x/crypto/argon2"
)

// Params are argon2id's cost parameters.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32
	Threads uint8
	KeyLen  uint32
	SaltLen uint32
}

// DefaultParams follow OWASP's argon2id minimum (19 MiB, 2 passes, 1 lane): tens of
// milliseconds per hash on a small server, which bounds guessing without letting sign-in
// floods exhaust memory.
var DefaultParams = Params{Memory: 19 * 1024, Time: 2, Threads: 1, KeyLen: 32, SaltLen: 16}

// ErrMalformedHash is returned for stored hashes this package cannot read.
var ErrMalformedHash = errors.New("malformed password hash")

var b64 = base64.RawStdEncoding

// Hash returns the PHC string of pw with a fresh random salt.
func Hash(pw string) (string, error) { return HashWith(DefaultParams, pw) }

// HashWith hashes with explicit parameters (tests use cheap ones).
func HashWith(p Params, pw string) (string, error) {
	salt := make([]byte, p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("salt: %w", err)
	}
	key := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// Verify reports whether pw matches the stored hash, comparing in constant time.
func Verify(hash, pw string) (bool, error) {
	p, salt, key, err := decode(hash)
	if err != nil {
		return false, err
	}
	got := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, uint32(len(key)))
	return subtle.ConstantTimeCompare(got, key) == 1, nil
}

var dummy = sync.OnceValue(func() string {
	h, err := Hash("dispatch24 dummy password, never matches")
	if err != nil {
		panic(err) // crypto/rand failing is not recoverable
	}
	return h
})

// Weaker reports whether hash was made with less memory or fewer passes than want (CSV
// imports use cheaper parameters than sign-up), so a caller can upgrade it once the password
// is known and pad a failed check to the full cost. A hash it cannot read is not weaker.
func Weaker(hash string, want Params) bool {
	p, _, _, err := decode(hash)
	if err != nil {
		return false
	}
	return p.Memory < want.Memory || p.Time < want.Time
}

// Dummy returns a hash with DefaultParams to verify against when an account does not
// exist, so an unknown account costs the same time as a wrong password.
func Dummy() string { return dummy() }

func decode(hash string) (Params, []byte, []byte, error) {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return Params{}, nil, nil, ErrMalformedHash
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return Params{}, nil, nil, ErrMalformedHash
	}
	var p Params
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil {
		return Params{}, nil, nil, ErrMalformedHash
	}
	if p.Memory == 0 || p.Memory > 1<<18 || p.Time == 0 || p.Time > 16 || p.Threads == 0 {
		return Params{}, nil, nil, ErrMalformedHash
	}
	salt, err := b64.DecodeString(parts[4])
	if err != nil || len(salt) < 8 {
		return Params{}, nil, nil, ErrMalformedHash
	}
	key, err := b64.DecodeString(parts[5])
	if err != nil || len(key) < 16 {
		return Params{}, nil, nil, ErrMalformedHash
	}
	return p, salt, key, nil
}
