package webhook

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
)

// SecretPrefix starts every signing secret, as in the Standard Webhooks specification.
const SecretPrefix = "whsec_"

const (
	// secretBytes is the size of the secrets NewSecret makes: 256 bits, well inside the
	// specification's 24..64 bytes.
	secretBytes = 32
	// minSecretBytes and maxSecretBytes are the specification's bounds on a decoded secret.
	minSecretBytes = 24
	maxSecretBytes = 64
)

// NewSecret returns a fresh signing secret: "whsec_" and the standard base64 encoding of 32
// random bytes.
func NewSecret() string {
	var key [secretBytes]byte
	// crypto/rand.Read never returns an error (it crashes the program instead).
	_, _ = rand.Read(key[:])
	return SecretPrefix + base64.StdEncoding.EncodeToString(key[:])
}

// DecodeSecret returns the HMAC key of a signing secret: the base64-decoded part after
// "whsec_". The prefix may be omitted, as Standard Webhooks libraries allow; the key must be 24
// to 64 bytes long. The error wraps ErrInvalidSecret and never repeats the secret.
func DecodeSecret(secret string) ([]byte, error) {
	var buf [maxSecretBytes]byte
	n, err := decodeSecretInto(&buf, secret)
	if err != nil {
		return nil, err
	}
	return append([]byte(nil), buf[:n]...), nil
}

// decodeSecretInto decodes secret into buf without allocating, for the per-attempt paths.
func decodeSecretInto(buf *[maxSecretBytes]byte, secret string) (int, error) {
	enc := strings.TrimPrefix(secret, SecretPrefix)
	enc = strings.TrimSpace(enc)
	if enc == "" {
		return 0, fmt.Errorf("%w: empty", ErrInvalidSecret)
	}
	// Decoding from a stack copy keeps the per-attempt path free of allocations.
	var src [88]byte // base64.StdEncoding.EncodedLen(maxSecretBytes)
	if len(enc) > len(src) {
		return 0, badSecret(secret, fmt.Sprintf("longer than %d bytes", maxSecretBytes))
	}
	copy(src[:], enc)
	var tmp [len(src) / 4 * 3]byte
	n, err := base64.StdEncoding.Decode(tmp[:], src[:len(enc)])
	if err != nil {
		return 0, badSecret(secret, "not standard base64")
	}
	if n < minSecretBytes || n > maxSecretBytes {
		return 0, fmt.Errorf("%w: %d bytes, want %d to %d", ErrInvalidSecret, n, minSecretBytes, maxSecretBytes)
	}
	copy(buf[:], tmp[:n])
	return n, nil
}

// badSecret is the error for a secret that is not base64 of a sensible length. A v1a key in the
// place of a secret gets a clearer word than its base64 would.
func badSecret(secret, detail string) error {
	if strings.HasPrefix(secret, SigningKeyPrefix) || strings.HasPrefix(secret, PublicKeyPrefix) {
		detail = "an Ed25519 key of the scheme v1a, not a whsec_ secret"
	}
	return fmt.Errorf("%w: %s", ErrInvalidSecret, detail)
}
