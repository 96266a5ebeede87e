package webhook

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"strings"
)

// The Standard Webhooks serializations of an Ed25519 key pair, for the asymmetric scheme "v1a".
const (
	// SigningKeyPrefix starts a secret signing key: "whsk_" and the standard base64 encoding of
	// the 64-byte Ed25519 private key, the 32-byte seed followed by the 32-byte public key (the
	// layout of crypto/ed25519 and libsodium). Only the sender holds it.
	SigningKeyPrefix = "whsk_"
	// PublicKeyPrefix starts a public key: "whpk_" and the standard base64 encoding of the
	// 32-byte Ed25519 public key. Receivers verify v1a signatures with it.
	PublicKeyPrefix = "whpk_"
)

// keyEncoding is strict so that every key has exactly one text form.
var keyEncoding = base64.StdEncoding.Strict()

// NewSigningKey returns a fresh Ed25519 key pair as Standard Webhooks serializes it: the secret
// signing key ("whsk_…") for the sender and the public key ("whpk_…") for receivers.
func NewSigningKey() (secretKey, publicKey string) {
	// With a nil reader, GenerateKey uses crypto/rand, which never fails (it crashes instead).
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		panic("webhook: generating an Ed25519 key: " + err.Error())
	}
	secretKey = SigningKeyPrefix + keyEncoding.EncodeToString(priv)
	clear(priv)
	return secretKey, PublicKeyPrefix + keyEncoding.EncodeToString(pub)
}

// ParseSigningKey decodes a "whsk_" secret signing key and checks that its public half belongs
// to its seed. Surrounding white space (such as a file's final newline) is ignored; anything else
// must be exact. The error wraps ErrInvalidKey and never repeats the key.
func ParseSigningKey(secretKey string) (ed25519.PrivateKey, error) {
	var buf [ed25519.PrivateKeySize]byte
	defer clear(buf[:])
	if err := decodeKey(buf[:], secretKey, SigningKeyPrefix, "signing key"); err != nil {
		return nil, err
	}
	priv := ed25519.NewKeyFromSeed(buf[:ed25519.SeedSize])
	// The public half is not secret, so an ordinary comparison will do.
	if !bytes.Equal(priv[ed25519.SeedSize:], buf[ed25519.SeedSize:]) {
		clear(priv)
		return nil, fmt.Errorf("%w: the signing key's public half does not belong to its seed", ErrInvalidKey)
	}
	return priv, nil
}

// ParsePublicKey decodes a "whpk_" public key. Surrounding white space is ignored; anything else
// must be exact. The error wraps ErrInvalidKey.
func ParsePublicKey(publicKey string) (ed25519.PublicKey, error) {
	buf := make([]byte, ed25519.PublicKeySize)
	if err := decodeKey(buf, publicKey, PublicKeyPrefix, "public key"); err != nil {
		return nil, err
	}
	return ed25519.PublicKey(buf), nil
}

// PublicKeyOf returns the "whpk_" public key of a "whsk_" secret signing key: what an endpoint's
// owner gives its receivers.
func PublicKeyOf(secretKey string) (string, error) {
	priv, err := ParseSigningKey(secretKey)
	if err != nil {
		return "", err
	}
	defer clear(priv)
	return PublicKeyPrefix + keyEncoding.EncodeToString(priv[ed25519.SeedSize:]), nil
}

// decodeKey decodes s, which must be prefix and the canonical base64 of exactly len(dst)
// bytes, into dst. what names the key in errors, which never repeat s.
func decodeKey(dst []byte, s, prefix, what string) error {
	s = strings.TrimSpace(s)
	enc, ok := strings.CutPrefix(s, prefix)
	if !ok {
		return fmt.Errorf("%w: %s", ErrInvalidKey, wrongKindOfKey(s, prefix, what))
	}
	if enc == "" {
		return fmt.Errorf("%w: empty %s", ErrInvalidKey, what)
	}
	// An exact length keeps out the line breaks that encoding/base64 would skip, so a key has
	// one text form only.
	if want := keyEncoding.EncodedLen(len(dst)); len(enc) != want {
		return fmt.Errorf("%w: the %s has %d base64 characters after %s, want %d (%d bytes)", ErrInvalidKey, what, len(enc), prefix, want, len(dst))
	}
	var tmp [ed25519.PrivateKeySize + 2]byte // the decoded length of the longest key's text
	defer clear(tmp[:])
	n, err := keyEncoding.Decode(tmp[:], []byte(enc))
	if err != nil {
		return fmt.Errorf("%w: the %s is not canonical standard base64", ErrInvalidKey, what)
	}
	if n != len(dst) {
		return fmt.Errorf("%w: the %s is %d bytes, want %d", ErrInvalidKey, what, n, len(dst))
	}
	copy(dst, tmp[:n])
	return nil
}

// wrongKindOfKey explains a key without the expected prefix, naming the kind it looks like.
func wrongKindOfKey(s, prefix, what string) string {
	switch {
	case s == "":
		return "empty " + what
	case strings.HasPrefix(s, SigningKeyPrefix):
		return "this is a whsk_ secret signing key, which only the sender holds; a receiver needs its whpk_ public key"
	case strings.HasPrefix(s, PublicKeyPrefix):
		return "this is a whpk_ public key, which verifies signatures but cannot make them"
	case strings.HasPrefix(s, SecretPrefix):
		return "this is a whsec_ secret of the symmetric scheme v1, not an Ed25519 key"
	}
	return "a " + what + " starts with " + prefix
}
