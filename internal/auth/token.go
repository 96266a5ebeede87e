package auth

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/dispatch24/dispatch24/internal/httpapi"
	"github.com/dispatch24/dispatch24/internal/ids"
)

// The values of the type claim.
const (
	TypeAccess  = "access"
	TypeRefresh = "refresh"
)

// MaxTokenLen bounds the tokens we parse. Ours are a few hundred bytes; anything much longer
// is refused before any decoding work.
const MaxTokenLen = 4096

// Claims are the claims of the service's own access and refresh tokens.
type Claims struct {
	jwt.RegisteredClaims
	// Type is TypeAccess or TypeRefresh.
	Type string `json:"type"`
	// UserID repeats sub, as Intake24's tokens do.
	UserID string `json:"userId,omitempty"`
	// Roles are the account's roles when the access token was issued: informational for
	// global accounts (the store is authoritative), ["respondent"] for respondents.
	Roles []string `json:"roles,omitempty"`
	// SurveyID and Username identify a respondent.
	SurveyID string `json:"surveyId,omitempty"`
	Username string `json:"username,omitempty"`
}

// respondent reports whether the claims are a respondent's.
func (c *Claims) respondent() bool { return slices.Contains(c.Roles, httpapi.RoleRespondent) }

// tokenCodec signs and verifies the service's tokens.
type tokenCodec struct {
	secret []byte
	issuer string
	now    func() time.Time
	parser *jwt.Parser
}

func newTokenCodec(secret []byte, issuer string, leeway time.Duration, now func() time.Time) *tokenCodec {
	return &tokenCodec{
		secret: secret,
		issuer: issuer,
		now:    now,
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
			jwt.WithIssuer(issuer),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithLeeway(leeway),
			jwt.WithTimeFunc(now),
		),
	}
}

// sign fills iss, jti, iat and exp and signs the claims; it returns the token and its jti.
func (tc *tokenCodec) sign(c Claims, ttl time.Duration) (string, string, error) {
	now := tc.now()
	c.Issuer = tc.issuer
	c.ID = newJTI()
	c.IssuedAt = jwt.NewNumericDate(now)
	c.ExpiresAt = jwt.NewNumericDate(now.Add(ttl))
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(tc.secret)
	if err != nil {
		return "", "", fmt.Errorf("signing %s token: %w", c.Type, err)
	}
	return tok, c.ID, nil
}

// parse verifies raw as a token of type typ. It returns ErrTokenExpired for a well-signed
// expired token and ErrInvalidToken for everything else that is wrong.
func (tc *tokenCodec) parse(raw, typ string) (*Claims, error) {
	if raw == "" || len(raw) > MaxTokenLen {
		return nil, ErrInvalidToken
	}
	var c Claims
	_, err := tc.parser.ParseWithClaims(raw, &c, func(t *jwt.Token) (any, error) {
		// WithValidMethods already refuses any other alg; this keeps the key function safe
		// on its own.
		if t.Method != jwt.SigningMethodHS256 {
			return nil, errors.New("unexpected signing method")
		}
		return tc.secret, nil
	})
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return nil, ErrTokenExpired
	case err != nil:
		return nil, fmt.Errorf("%w: %w", ErrInvalidToken, err)
	}
	if c.Type != typ {
		return nil, fmt.Errorf("%w: a %q token where %q was expected", ErrInvalidToken, c.Type, typ)
	}
	if c.Subject == "" || c.ID == "" || c.IssuedAt == nil {
		return nil, fmt.Errorf("%w: sub, jti and iat are required", ErrInvalidToken)
	}
	if typ == TypeAccess {
		if c.UserID != c.Subject {
			return nil, fmt.Errorf("%w: userId differs from sub", ErrInvalidToken)
		}
		if c.respondent() != (c.SurveyID != "") || (c.respondent() && len(c.Roles) != 1) {
			return nil, fmt.Errorf("%w: inconsistent respondent claims", ErrInvalidToken)
		}
	}
	return &c, nil
}

var b64url = base64.RawURLEncoding

// newJTI returns 128 random bits, base64url.
func newJTI() string { return randomString(16) }

// randomString returns n random bytes, base64url without padding.
func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms (Go 1.24+)
	return b64url.EncodeToString(b)
}

// newID returns a prefixed random id, e.g. usr_…, pat_….
func newID(prefix string) string { return ids.Random(prefix) }
