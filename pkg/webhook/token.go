package webhook

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TokenTTL is the lifetime of a delivery's Authorization JWT: exp = iat + TokenTTL.
const TokenTTL = 5 * time.Minute

// tokenAlg is the only algorithm delivery tokens are signed and verified with.
const tokenAlg = "HS256"

// Claims are the claims of a delivery's Authorization JWT, as Verify returns them. The
// registered claims are iss, sub (the respondent's username), aud (the webhook URL), iat, exp and
// jti (unique per attempt). Empty event fields are left out of the token.
type Claims struct {
	jwt.RegisteredClaims
	// Type is the event type, such as "survey.session.submitted".
	Type         string `json:"type"`
	SurveyID     string `json:"surveyId,omitempty"`
	SessionID    string `json:"sessionId,omitempty"`
	UserID       string `json:"userId,omitempty"`
	SubmissionID string `json:"submissionId,omitempty"`
	// BodySHA256 is the unpadded base64url SHA-256 of the exact body bytes; Verify checks it.
	BodySHA256 string `json:"bodySha256"`
}

// TokenParams are the inputs of one attempt's Authorization JWT.
type TokenParams struct {
	// Issuer is the iss claim (TOKEN_ISSUER, "intake24" by default).
	Issuer string
	// Audience is the aud claim: the webhook URL.
	Audience string
	// Subject is the sub claim: the respondent's username.
	Subject string
	// Type is the event type.
	Type         string
	SurveyID     string
	SessionID    string
	UserID       string
	SubmissionID string
	// IssuedAt is the iat claim; zero means now.
	IssuedAt time.Time
	// ID is the jti claim; empty means a fresh random one, which is what every attempt wants.
	ID string
}

// SignToken returns the HS256 JWT for one attempt with body, signed with key (the survey's
// jwtSecret).
func SignToken(key []byte, p TokenParams, body []byte) (string, error) {
	if len(key) == 0 {
		return "", errors.New("signing token: empty key")
	}
	iat := p.IssuedAt
	if iat.IsZero() {
		iat = time.Now()
	}
	jti := p.ID
	if jti == "" {
		jti = rand.Text()
	}
	c := &tokenClaims{
		Issuer:       p.Issuer,
		Subject:      p.Subject,
		Audience:     p.Audience,
		IssuedAt:     iat.Unix(),
		ExpiresAt:    iat.Add(TokenTTL).Unix(),
		ID:           jti,
		Type:         p.Type,
		SurveyID:     p.SurveyID,
		SessionID:    p.SessionID,
		UserID:       p.UserID,
		SubmissionID: p.SubmissionID,
		BodySHA256:   BodySHA256(body),
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(key)
	if err != nil {
		return "", fmt.Errorf("signing token: %w", err)
	}
	return s, nil
}

// BodySHA256 returns the bodySha256 claim for body: the unpadded base64url encoding of its
// SHA-256.
func BodySHA256(body []byte) string {
	sum := sha256.Sum256(body)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// tokenClaims is the wire form of a token being signed. It differs from Claims in writing aud
// as a single string, which jwt.ClaimStrings would write as an array, and in needing no
// pointer-valued dates.
type tokenClaims struct {
	Issuer       string `json:"iss"`
	Subject      string `json:"sub,omitempty"`
	Audience     string `json:"aud"`
	IssuedAt     int64  `json:"iat"`
	ExpiresAt    int64  `json:"exp"`
	ID           string `json:"jti"`
	Type         string `json:"type"`
	SurveyID     string `json:"surveyId,omitempty"`
	SessionID    string `json:"sessionId,omitempty"`
	UserID       string `json:"userId,omitempty"`
	SubmissionID string `json:"submissionId,omitempty"`
	BodySHA256   string `json:"bodySha256"`
}

var _ jwt.Claims = (*tokenClaims)(nil)

// GetExpirationTime implements jwt.Claims.
func (c *tokenClaims) GetExpirationTime() (*jwt.NumericDate, error) {
	return jwt.NewNumericDate(time.Unix(c.ExpiresAt, 0)), nil
}

// GetIssuedAt implements jwt.Claims.
func (c *tokenClaims) GetIssuedAt() (*jwt.NumericDate, error) {
	return jwt.NewNumericDate(time.Unix(c.IssuedAt, 0)), nil
}

// GetNotBefore implements jwt.Claims.
func (c *tokenClaims) GetNotBefore() (*jwt.NumericDate, error) { return nil, nil }

// GetIssuer implements jwt.Claims.
func (c *tokenClaims) GetIssuer() (string, error) { return c.Issuer, nil }

// GetSubject implements jwt.Claims.
func (c *tokenClaims) GetSubject() (string, error) { return c.Subject, nil }

// GetAudience implements jwt.Claims.
func (c *tokenClaims) GetAudience() (jwt.ClaimStrings, error) {
	return jwt.ClaimStrings{c.Audience}, nil
}
