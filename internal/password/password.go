// Package password hashes and checks account passwords with argon2id, in the PHC string
// format ($argon2id$v=19$m=…,t=…,p=…$salt$hash), so parameters can be raised later without
// breaking stored hashes. A weaker hash is raised without its password by Upgrade, into the
// $argon2id-onion$ form, and Hasher bounds how much argon2 memory a process uses at once.
package password

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
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

// Verify reports whether pw matches the stored hash (plain or upgraded, see Upgrade),
// comparing in constant time.
func Verify(hash, pw string) (bool, error) {
	d, err := decodeAny(hash)
	if err != nil {
		return false, err
	}
	in := []byte(pw)
	if d.inner != nil {
		i := d.inner
		in = argon2.IDKey(in, i.salt, i.p.Time, i.p.Memory, i.p.Threads, i.p.KeyLen)
	}
	got := argon2.IDKey(in, d.salt, d.p.Time, d.p.Memory, d.p.Threads, uint32(len(d.key)))
	return subtle.ConstantTimeCompare(got, d.key) == 1, nil
}

// OnionID is the PHC function id of an upgraded hash.
const OnionID = "argon2id-onion"

// Upgrade raises a plain argon2id hash to the costs of p without the password, by hashing
// its output again (a "hash onion"):
//
//	$argon2id-onion$v=19$m=M,t=T,p=P,im=m,it=t,ip=p,il=L,is=S$<salt>$<hash>
//
// where m, t, p, L and S are the inner (original) hash's memory, passes, lanes, output length
// and salt (base64 without padding, as PHC allows in a parameter value), and
// hash = argon2id(argon2id(password, S; m, t, p, L), salt; M, T, P). Verify recomputes both
// layers, so an upgraded hash costs an attacker the inner and the outer costs per guess.
// Upgrading an upgraded hash, or one not weaker than p, is refused.
func Upgrade(hash string, p Params) (string, error) {
	d, err := decodeAny(hash)
	if err != nil {
		return "", err
	}
	if d.inner != nil {
		return "", fmt.Errorf("%w: already upgraded", ErrMalformedHash)
	}
	salt := make([]byte, p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("salt: %w", err)
	}
	key := argon2.IDKey(d.key, salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	return fmt.Sprintf("$%s$v=%d$m=%d,t=%d,p=%d,im=%d,it=%d,ip=%d,il=%d,is=%s$%s$%s",
		OnionID, argon2.Version, p.Memory, p.Time, p.Threads,
		d.p.Memory, d.p.Time, d.p.Threads, len(d.key), b64.EncodeToString(d.salt),
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

var dummy = sync.OnceValue(func() string {
	h, err := Hash("dispatch24 dummy password, never matches")
	if err != nil {
		panic(err) // crypto/rand failing is not recoverable
	}
	return h
})

// Weaker reports whether hash was made with less memory or fewer passes than want (CSV
// imports use cheaper parameters than sign-up), so a caller can upgrade it and pad a failed
// check to the full cost. An upgraded hash is judged by its outer layer. A hash it cannot
// read is not weaker.
func Weaker(hash string, want Params) bool {
	d, err := decodeAny(hash)
	if err != nil {
		return false
	}
	return d.p.Memory < want.Memory || d.p.Time < want.Time
}

// Dummy returns a hash with DefaultParams to verify against when an account does not
// exist, so an unknown account costs the same time as a wrong password.
func Dummy() string { return dummy() }

// decoded is a parsed hash; inner is set for an upgraded one (key is then unused).
type decoded struct {
	p     Params
	salt  []byte
	key   []byte
	inner *decoded
}

func decodeAny(hash string) (*decoded, error) {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || (parts[1] != "argon2id" && parts[1] != OnionID) {
		return nil, ErrMalformedHash
	}
	if parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return nil, ErrMalformedHash
	}
	params, err := parseParams(parts[3])
	if err != nil {
		return nil, err
	}
	d := &decoded{}
	if d.p, err = costs(params, ""); err != nil {
		return nil, err
	}
	if parts[1] == OnionID {
		i := &decoded{}
		if i.p, err = costs(params, "i"); err != nil {
			return nil, err
		}
		l, ok := params["il"]
		n, err := strconv.ParseUint(l, 10, 32)
		if !ok || err != nil || n < 16 || n > 1024 {
			return nil, ErrMalformedHash
		}
		i.p.KeyLen = uint32(n)
		if i.salt, err = b64.DecodeString(params["is"]); err != nil || len(i.salt) < 8 {
			return nil, ErrMalformedHash
		}
		d.inner = i
	} else if len(params) != 3 {
		return nil, ErrMalformedHash
	}
	if d.salt, err = b64.DecodeString(parts[4]); err != nil || len(d.salt) < 8 {
		return nil, ErrMalformedHash
	}
	if d.key, err = b64.DecodeString(parts[5]); err != nil || len(d.key) < 16 || len(d.key) > 1024 {
		return nil, ErrMalformedHash
	}
	return d, nil
}

// parseParams reads a PHC parameter list, k=v[,k=v…], refusing repeats.
func parseParams(s string) (map[string]string, error) {
	out := make(map[string]string, 8)
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, ErrMalformedHash
		}
		if _, dup := out[k]; dup {
			return nil, ErrMalformedHash
		}
		out[k] = v
	}
	return out, nil
}

// costs reads memory, passes and lanes (prefix+"m", "t", "p") within sane bounds.
func costs(params map[string]string, prefix string) (Params, error) {
	num := func(k string, lo, hi uint64) (uint64, bool) {
		v, ok := params[prefix+k]
		if !ok {
			return 0, false
		}
		n, err := strconv.ParseUint(v, 10, 32)
		return n, err == nil && n >= lo && n <= hi
	}
	m, okM := num("m", 1, 1<<18)
	t, okT := num("t", 1, 16)
	p, okP := num("p", 1, 255)
	if !okM || !okT || !okP {
		return Params{}, ErrMalformedHash
	}
	return Params{Memory: uint32(m), Time: uint32(t), Threads: uint8(p)}, nil
}
