package webhook

import (
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	// DefaultTolerance is how far webhook-timestamp may be from the receiver's clock, either way.
	DefaultTolerance = 5 * time.Minute
	// DefaultIssuer is the iss claim Dispatch24 writes unless TOKEN_ISSUER says otherwise.
	DefaultIssuer = "intake24"
	// DefaultMaxBodyBytes bounds the body Verifier.Middleware reads.
	DefaultMaxBodyBytes = 5 << 20
	// MaxAsymmetricSignatures is how many v1a signatures Verify checks in one delivery. Each
	// costs an Ed25519 verification per public key, so a header stuffed with them could tie up a
	// receiver; a sender lists one per key, two while a key rotates. A delivery with more fails.
	MaxAsymmetricSignatures = 8
)

// VerifierConfig configures a Verifier.
type VerifierConfig struct {
	// Secrets are the endpoint's whsec_ signing secrets (the symmetric scheme v1); a delivery
	// with a v1 signature under any of them is accepted. While a rotation rolls out, list the new
	// secret and the old one. At least one secret or public key is required.
	Secrets []string
	// PublicKeys are the endpoint's whpk_ public keys (the asymmetric scheme v1a, Ed25519); a
	// delivery with a v1a signature by any of them is accepted. While a key rotates, list the new
	// key and the old one. Secrets and PublicKeys may be given together, for instance while an
	// endpoint moves from v1 to v1a.
	PublicKeys []string
	// JWTSecret is the survey's jwtSecret. When set, every delivery must carry an
	// "Authorization: Bearer <JWT>" that is HS256-signed with it, has the expected issuer and
	// audience, has not expired, and whose bodySha256 matches the body. Empty (the default)
	// skips the JWT.
	JWTSecret string
	// Issuer is the iss the JWT must carry. Default DefaultIssuer ("intake24").
	Issuer string
	// Audience is the aud the JWT must carry: the webhook URL exactly as registered. Required
	// when JWTSecret is set.
	Audience string
	// Tolerance is how far webhook-timestamp may be from now, either way. Default 5 minutes.
	Tolerance time.Duration
	// NowFunc returns the current time. Default time.Now.
	NowFunc func() time.Time
	// MaxBodyBytes bounds the body Middleware reads; longer bodies get 413. Default 5 MiB.
	MaxBodyBytes int64
}

// WithDefaults returns c with its zero fields set to their defaults.
func (c VerifierConfig) WithDefaults() VerifierConfig {
	if c.Issuer == "" {
		c.Issuer = DefaultIssuer
	}
	if c.Tolerance == 0 {
		c.Tolerance = DefaultTolerance
	}
	if c.NowFunc == nil {
		c.NowFunc = time.Now
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	return c
}

func (c VerifierConfig) validate() error {
	if len(c.Secrets) == 0 && len(c.PublicKeys) == 0 {
		return errors.New("at least one signing secret or public key is required")
	}
	if c.JWTSecret != "" && c.Audience == "" {
		return errors.New("an audience (the webhook URL) is required with a JWT secret")
	}
	if c.Tolerance < 0 {
		return errors.New("tolerance must not be negative")
	}
	if c.MaxBodyBytes < 0 {
		return errors.New("max body bytes must not be negative")
	}
	return nil
}

// Verifier checks deliveries on the receiving side. It is safe for concurrent use.
type Verifier struct {
	keys      [][]byte
	pubs      []ed25519.PublicKey
	jwtKey    []byte
	parser    *jwt.Parser
	tolerance time.Duration
	now       func() time.Time
	maxBody   int64
	macs      macPool
	contents  contentPool
}

// Verified describes a delivery that passed Verify.
type Verified struct {
	// ID is the webhook-id: the event id, the same on every attempt. Deduplicate on it.
	ID string
	// Timestamp is the webhook-timestamp: when this attempt was made.
	Timestamp time.Time
	// Claims are the verified JWT claims; nil when the Verifier has no JWT secret.
	Claims *Claims
}

// NewVerifier returns a Verifier for cfg, with defaults applied.
func NewVerifier(cfg VerifierConfig) (*Verifier, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("webhook verifier: %w", err)
	}
	v := &Verifier{
		tolerance: cfg.Tolerance,
		now:       cfg.NowFunc,
		maxBody:   cfg.MaxBodyBytes,
	}
	for i, s := range cfg.Secrets {
		key, err := DecodeSecret(s)
		if err != nil {
			return nil, fmt.Errorf("webhook verifier: secret %d: %w", i+1, err)
		}
		v.keys = append(v.keys, key)
	}
	for i, s := range cfg.PublicKeys {
		pub, err := ParsePublicKey(s)
		if err != nil {
			return nil, fmt.Errorf("webhook verifier: public key %d: %w", i+1, err)
		}
		v.pubs = append(v.pubs, pub)
	}
	if cfg.JWTSecret != "" {
		v.jwtKey = []byte(cfg.JWTSecret)
		v.parser = jwt.NewParser(
			jwt.WithValidMethods([]string{tokenAlg}),
			jwt.WithIssuer(cfg.Issuer),
			jwt.WithAudience(cfg.Audience),
			jwt.WithExpirationRequired(),
			jwt.WithTimeFunc(cfg.NowFunc),
		)
	}
	return v, nil
}

// Verify checks a delivery's headers and exact body bytes: the Standard Webhooks signatures
// (any listed v1 signature may match any secret, any listed v1a signature any public key), then
// that webhook-timestamp is within the tolerance, then, with a JWT secret, the Authorization JWT
// and its bodySha256. Errors wrap ErrMissingHeaders, ErrInvalidSignature,
// ErrTimestampOutOfRange, ErrInvalidToken or ErrBodyMismatch. The signature is checked before the
// timestamp, so ErrTimestampOutOfRange means a genuine but stale (or future) delivery.
func (v *Verifier) Verify(header http.Header, body []byte) (*Verified, error) {
	id := header.Get(HeaderID)
	tsText := header.Get(HeaderTimestamp)
	sigs := header.Values(HeaderSignature)
	if id == "" || tsText == "" || len(sigs) == 0 {
		return nil, fmt.Errorf("%w: want %s, %s and %s", ErrMissingHeaders, HeaderID, HeaderTimestamp, HeaderSignature)
	}
	unix, ok := parseUnixSeconds(tsText)
	if !ok {
		return nil, fmt.Errorf("%w: %s is not Unix seconds", ErrInvalidSignature, HeaderTimestamp)
	}
	if err := v.checkSignatures(id, tsText, body, sigs); err != nil {
		return nil, err
	}
	ts := time.Unix(unix, 0)
	now := v.now()
	if d := now.Sub(ts); d > v.tolerance {
		return nil, fmt.Errorf("%w: %s old, tolerance %s", ErrTimestampOutOfRange, d.Truncate(time.Second), v.tolerance)
	} else if -d > v.tolerance {
		return nil, fmt.Errorf("%w: %s in the future, tolerance %s", ErrTimestampOutOfRange, (-d).Truncate(time.Second), v.tolerance)
	}
	res := &Verified{ID: id, Timestamp: ts}
	if v.parser == nil {
		return res, nil
	}
	claims, err := v.verifyToken(header.Get("Authorization"), body)
	if err != nil {
		return nil, err
	}
	res.Claims = claims
	return res, nil
}

// checkSignatures returns nil when a signature in the header values is genuine: a v1 signature
// under a secret or a v1a signature by a public key. The cheap HMACs go first.
func (v *Verifier) checkSignatures(id, ts string, body []byte, sigs []string) error {
	m := v.macs.get()
	defer v.macs.put(m)
	if v.macMatches(m, id, ts, body, sigs) {
		return nil
	}
	if len(v.pubs) > 0 {
		return v.checkEd25519(id, ts, body, sigs)
	}
	return ErrInvalidSignature
}

// macMatches reports whether any v1 signature in the header values is the HMAC of the delivery
// under any key.
func (v *Verifier) macMatches(m *macer, id, ts string, body []byte, sigs []string) bool {
	var want [encodedMACLen]byte
	var got [encodedMACLen]byte
	for _, key := range v.keys {
		mac := m.sum(key, id, []byte(ts), body)
		base64.StdEncoding.Encode(want[:], mac[:])
		for _, value := range sigs {
			for field := range strings.FieldsSeq(value) {
				sig, ok := strings.CutPrefix(field, signaturePrefix)
				// The length of a signature is public; only its content needs a constant-time
				// comparison.
				if !ok || len(sig) != encodedMACLen {
					continue
				}
				copy(got[:], sig)
				if subtle.ConstantTimeCompare(got[:], want[:]) == 1 {
					return true
				}
			}
		}
	}
	return false
}

// checkEd25519 returns nil when any v1a signature in the header values verifies with any public
// key, checking at most MaxAsymmetricSignatures of them.
func (v *Verifier) checkEd25519(id, ts string, body []byte, sigs []string) error {
	var content *[]byte // the signed content, assembled for the first well-formed v1a signature
	defer func() {
		if content != nil {
			v.contents.put(content)
		}
	}()
	var src [encodedEd25519Len]byte
	var sig [encodedEd25519Len / 4 * 3]byte
	seen := 0
	for _, value := range sigs {
		for field := range strings.FieldsSeq(value) {
			enc, ok := strings.CutPrefix(field, asymmetricPrefix)
			if !ok {
				continue
			}
			if seen++; seen > MaxAsymmetricSignatures {
				return fmt.Errorf("%w: more than %d v1a signatures", ErrInvalidSignature, MaxAsymmetricSignatures)
			}
			if len(enc) != encodedEd25519Len {
				continue
			}
			copy(src[:], enc)
			n, err := base64.StdEncoding.Decode(sig[:], src[:])
			if err != nil || n != ed25519.SignatureSize {
				continue
			}
			if content == nil {
				content = v.contents.get()
				*content = appendSignedContent((*content)[:0], id, []byte(ts), body)
			}
			for _, pub := range v.pubs {
				if ed25519.Verify(pub, *content, sig[:n]) {
					return nil
				}
			}
		}
	}
	return ErrInvalidSignature
}

// verifyToken checks the Authorization header's JWT and binds it to body.
func (v *Verifier) verifyToken(authorization string, body []byte) (*Claims, error) {
	scheme, token, ok := strings.Cut(authorization, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return nil, fmt.Errorf("%w: want Authorization: Bearer <JWT>", ErrMissingHeaders)
	}
	claims := new(Claims)
	_, err := v.parser.ParseWithClaims(strings.TrimSpace(token), claims, func(*jwt.Token) (any, error) {
		return v.jwtKey, nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	sum := sha256.Sum256(body)
	var want [43]byte // base64.RawURLEncoding.EncodedLen(sha256.Size)
	base64.RawURLEncoding.Encode(want[:], sum[:])
	if subtle.ConstantTimeCompare([]byte(claims.BodySHA256), want[:]) != 1 {
		return nil, ErrBodyMismatch
	}
	return claims, nil
}

// parseUnixSeconds parses a webhook-timestamp: ASCII digits only, no sign, no leading zero,
// since the signature covers the header's exact text.
func parseUnixSeconds(s string) (int64, bool) {
	if s == "" || len(s) > 18 || (s[0] == '0' && len(s) > 1) {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}
