package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// KeySize is the length of a key in bytes: AES-256.
const KeySize = 32

// minDistinctBytes is the fewest distinct byte values ParseKey accepts in a key. 32 random
// bytes have about 30; fewer than 16 happens by chance with a probability far below 2^-100,
// while typed or patterned keys (zeros, "aaaa…", a repeated word) have fewer.
const minDistinctBytes = 16

// ParseKey decodes a key written as base64 (standard or URL alphabet, padded or not) or as
// hex. It must be exactly KeySize bytes and not patterned. Errors never quote s.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	var b []byte
	if len(s) == 2*KeySize {
		b, _ = hex.DecodeString(s)
	}
	if b == nil {
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			if d, err := enc.Strict().DecodeString(s); err == nil {
				b = d
				break
			}
		}
	}
	if len(b) != KeySize {
		return nil, fmt.Errorf("want %d random bytes as base64 or hex (e.g. openssl rand -base64 32)", KeySize)
	}
	var seen [256]bool
	n := 0
	for _, c := range b {
		if !seen[c] {
			seen[c] = true
			n++
		}
	}
	if n < minDistinctBytes {
		return nil, errors.New("is not random: generate it with openssl rand -base64 32")
	}
	return b, nil
}

// ParseKeys parses a comma-separated list of keys (SECRETS_KEY_PREVIOUS); empty gives none.
// Errors name the position of the bad key, never its value.
func ParseKeys(s string) ([][]byte, error) {
	var out [][]byte
	for i, p := range strings.Split(s, ",") {
		if strings.TrimSpace(p) == "" {
			continue
		}
		k, err := ParseKey(p)
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", i+1, err)
		}
		out = append(out, k)
	}
	return out, nil
}

// KeyID names key: the first 4 bytes of HMAC-SHA256(key, "dispatch24 secrets key id"), in hex.
func KeyID(key []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("dispatch24 secrets key id"))
	return hex.EncodeToString(m.Sum(nil)[:4])
}

type key struct {
	id   string
	aead cipher.AEAD
}

// A Keyring seals with its current key and opens with it or any of its previous keys. It is
// safe for concurrent use.
type Keyring struct {
	current *key
	byID    map[string]*key
}

// NewKeyring returns a keyring sealing with current and opening with current and previous.
func NewKeyring(current []byte, previous ...[]byte) (*Keyring, error) {
	k := &Keyring{byID: map[string]*key{}}
	for i, raw := range append([][]byte{current}, previous...) {
		if len(raw) != KeySize {
			return nil, fmt.Errorf("secret: key %d is %d bytes, want %d", i, len(raw), KeySize)
		}
		block, err := aes.NewCipher(raw)
		if err != nil {
			return nil, fmt.Errorf("secret: %w", err)
		}
		aead, err := cipher.NewGCMWithRandomNonce(block)
		if err != nil {
			return nil, fmt.Errorf("secret: %w", err)
		}
		kk := &key{id: KeyID(raw), aead: aead}
		if i == 0 {
			k.current = kk
		}
		if _, dup := k.byID[kk.id]; !dup {
			k.byID[kk.id] = kk
		}
	}
	return k, nil
}

// KeyID is the current key's id.
func (k *Keyring) KeyID() string { return k.current.id }

// PreviousKeyIDs are the ids of the keys that only open, sorted.
func (k *Keyring) PreviousKeyIDs() []string {
	var out []string
	for id := range k.byID {
		if id != k.current.id {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// Place is where a sealed value is stored: its table, its column and its row's id. A value
// opens only at the Place it was sealed for.
type Place struct {
	Table, Column, Row string
}

func (p Place) String() string { return p.Table + "." + p.Column + " of " + p.Row }

// prefix starts every sealed value; version is the format.
const (
	prefix  = "enc:"
	version = "v1"
)

// header is the part of a sealed value before its ciphertext: "enc:v1:<key id>:".
func header(keyID string) string { return prefix + version + ":" + keyID + ":" }

func associatedData(hdr string, p Place) []byte {
	return []byte(hdr + "\x00" + p.Table + "\x00" + p.Column + "\x00" + p.Row)
}

// IsSealed reports whether a stored value is a sealed one (by its prefix), as opposed to a
// plain value written before secrets were sealed.
func IsSealed(stored string) bool { return strings.HasPrefix(stored, prefix) }

// Errors of Open and Reseal. They wrap these with the Place, never with the value.
var (
	// ErrMalformed: the value has the sealed prefix but not the sealed format.
	ErrMalformed = errors.New("sealed value is malformed")
	// ErrUnknownKey: the value was sealed with a key the keyring does not hold (see KeyError).
	ErrUnknownKey = errors.New("sealed with an unknown key")
	// ErrNotOpened: the key is right but the value does not authenticate: damaged, or copied
	// from another row or column.
	ErrNotOpened = errors.New("sealed value does not open (damaged, or copied from another row)")
)

// KeyError says which key a value was sealed with when the keyring lacks it.
type KeyError struct {
	Place   Place
	KeyID   string   // the key the value was sealed with
	Current string   // the keyring's current key id
	Others  []string // the keyring's previous key ids
}

func (e *KeyError) Error() string {
	prev := "none"
	if len(e.Others) > 0 {
		prev = strings.Join(e.Others, ", ")
	}
	return fmt.Sprintf("%s is sealed with key id %s, which is neither SECRETS_KEY (id %s) nor in SECRETS_KEY_PREVIOUS (ids: %s): wrong SECRETS_KEY?",
		e.Place, e.KeyID, e.Current, prev)
}

// Unwrap makes errors.Is(err, ErrUnknownKey) hold.
func (e *KeyError) Unwrap() error { return ErrUnknownKey }

// Seal seals plain for p with the current key. The empty string stays empty (no secret set).
func (k *Keyring) Seal(p Place, plain string) string {
	if plain == "" {
		return ""
	}
	hdr := header(k.current.id)
	ct := k.current.aead.Seal(nil, nil, []byte(plain), associatedData(hdr, p))
	return hdr + base64.RawURLEncoding.EncodeToString(ct)
}

// parse splits a sealed value into its header and key id and its decoded ciphertext.
func parse(stored string) (hdr, keyID string, ct []byte, err error) {
	rest, ok := strings.CutPrefix(stored, prefix+version+":")
	if !ok {
		return "", "", nil, ErrMalformed
	}
	keyID, b64, ok := strings.Cut(rest, ":")
	if !ok || len(keyID) != 8 || strings.ToLower(keyID) != keyID {
		return "", "", nil, ErrMalformed
	}
	if _, err := hex.DecodeString(keyID); err != nil {
		return "", "", nil, ErrMalformed
	}
	ct, err = base64.RawURLEncoding.Strict().DecodeString(b64)
	// 12-byte nonce and 16-byte tag around at least one byte: Seal never stores an empty secret.
	// The decoder skips newlines: only the canonical form Seal writes is accepted.
	if err != nil || len(ct) < 12+16+1 || base64.RawURLEncoding.EncodeToString(ct) != b64 {
		return "", "", nil, ErrMalformed
	}
	return stored[:len(stored)-len(b64)], keyID, ct, nil
}

// Open returns the secret stored at p: a sealed value opened with the key it names, or a plain
// value (written before sealing, see the package doc) as it is.
func (k *Keyring) Open(p Place, stored string) (string, error) {
	if !IsSealed(stored) {
		return stored, nil
	}
	hdr, keyID, ct, err := parse(stored)
	if err != nil {
		return "", fmt.Errorf("%s: %w", p, err)
	}
	kk := k.byID[keyID]
	if kk == nil {
		return "", &KeyError{Place: p, KeyID: keyID, Current: k.current.id, Others: k.PreviousKeyIDs()}
	}
	plain, err := kk.aead.Open(nil, nil, ct, associatedData(hdr, p))
	if err != nil {
		return "", fmt.Errorf("%s: %w", p, ErrNotOpened)
	}
	return string(plain), nil
}

// Reseal returns what should be stored at p instead of stored, and whether that differs: a
// plain value or one sealed with a previous key is sealed with the current key; a value sealed
// with the current key, and the empty string, stay. A value that does not open is an error.
func (k *Keyring) Reseal(p Place, stored string) (string, bool, error) {
	if stored == "" || strings.HasPrefix(stored, header(k.current.id)) {
		// Sealed with the current key: its header says so. Open checks it when it is read.
		return stored, false, nil
	}
	plain, err := k.Open(p, stored)
	if err != nil {
		return "", false, err
	}
	return k.Seal(p, plain), true, nil
}

// GenerateKey returns a new random key.
func GenerateKey() []byte {
	b := make([]byte, KeySize)
	_, _ = rand.Read(b) // crypto/rand.Read does not fail (it crashes the program if it must)
	return b
}

// EncodeKey writes key the way SECRETS_KEY takes it: standard base64, padded.
func EncodeKey(key []byte) string { return base64.StdEncoding.EncodeToString(key) }

// SealedPrefix is how every value sealed with the current key starts, "enc:v1:<key id>:", for
// queries that look for values still to seal (plain ones, or sealed with a previous key).
func (k *Keyring) SealedPrefix() string { return header(k.current.id) }

// WebhookSecret is where webhook id's signing secrets are stored: webhooks.secret and, after a
// rotation, webhooks.previous_secret (one Place for both: see the package doc).
func WebhookSecret(id string) Place { return Place{Table: "webhooks", Column: "secret", Row: id} }

// SurveyJWTSecret is where survey id's jwtSecret is stored: surveys.jwt_secret.
func SurveyJWTSecret(id string) Place { return Place{Table: "surveys", Column: "jwt_secret", Row: id} }
