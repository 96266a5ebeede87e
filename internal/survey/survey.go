package survey

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits of survey settings.
const (
	// DefaultAuthURLTokenLength is the auth token length of a survey that does not set one.
	DefaultAuthURLTokenLength = 32
	// MinAuthURLTokenLength keeps tokens unguessable: 12 of 62 symbols are 71 bits.
	MinAuthURLTokenLength = 12
	// MaxAuthURLTokenLength keeps authentication URLs short enough for e-mails and SMS.
	MaxAuthURLTokenLength = 128
	// MinJWTSecretLength is the shortest jwtSecret accepted: 32 characters, as HS256 wants
	// at least 256 bits of key.
	MinJWTSecretLength = 32
	// MaxJWTSecretLength bounds the secret.
	MaxJWTSecretLength = 1024

	maxSurveyName = 256
	maxURL        = 2048
)

var slugRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

// Survey is a survey's settings as stored.
type Survey struct {
	ID            string
	Name          string
	AllowGenUsers bool
	// JWTSecret verifies create-user tokens and signs webhook JWTs. It is never sent back
	// through the API, and only Store.SurveyWithSecret opens it from the store: the other
	// reads leave it empty and say only whether one is set, in JWTSecretSet.
	JWTSecret string
	// JWTSecretSet reports whether the survey has a jwtSecret. A change sets JWTSecret to the
	// new secret, or clears both to remove it; JWTSecretSet with JWTSecret empty keeps the
	// stored secret as it is.
	JWTSecretSet       bool
	RedirectURL        string
	RedirectIdentifier string
	AuthURLTokenLength int
	CreatedAt          time.Time
	UpdatedAt          time.Time
}

// CanGenerateUsers reports whether create-user tokens are accepted for the survey.
func (s *Survey) CanGenerateUsers() bool { return s.AllowGenUsers && s.HasJWTSecret() }

// HasJWTSecret reports whether the survey has a jwtSecret, opened or not.
func (s *Survey) HasJWTSecret() bool { return s.JWTSecretSet || s.JWTSecret != "" }

// ValidSlug reports whether id is a valid survey id.
func ValidSlug(id string) bool { return slugRE.MatchString(id) }

// checkSurveyName validates a survey name.
func checkSurveyName(name string) string {
	switch {
	case strings.TrimSpace(name) == "":
		return "is required"
	case utf8.RuneCountInString(name) > maxSurveyName:
		return fmt.Sprintf("must be at most %d characters", maxSurveyName)
	case hasControl(name):
		return "must be UTF-8 text without control characters"
	}
	return ""
}

// checkJWTSecret validates a jwtSecret being set.
func checkJWTSecret(secret string) string {
	n := utf8.RuneCountInString(secret)
	switch {
	case n < MinJWTSecretLength:
		return fmt.Sprintf("must be at least %d characters", MinJWTSecretLength)
	case n > MaxJWTSecretLength:
		return fmt.Sprintf("must be at most %d characters", MaxJWTSecretLength)
	}
	return ""
}

// checkAuthURLTokenLength validates authUrlTokenLength.
func checkAuthURLTokenLength(n int) string {
	if n < MinAuthURLTokenLength || n > MaxAuthURLTokenLength {
		return fmt.Sprintf("must be between %d and %d", MinAuthURLTokenLength, MaxAuthURLTokenLength)
	}
	return ""
}

// checkRedirectURL validates a redirect URL template: an absolute http(s) URL once
// {identifier} is filled in.
func checkRedirectURL(tmpl string) string {
	if len(tmpl) > maxURL {
		return fmt.Sprintf("must be at most %d characters", maxURL)
	}
	return checkAbsoluteURL(strings.ReplaceAll(tmpl, "{identifier}", "x"))
}

// checkAbsoluteURL validates an absolute http or https URL with a host and no credentials.
func checkAbsoluteURL(raw string) string {
	if len(raw) > maxURL {
		return fmt.Sprintf("must be at most %d characters", maxURL)
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || hasControl(raw) {
		return "must be an absolute http or https URL"
	}
	if u.User != nil {
		return "must not contain credentials"
	}
	return ""
}

// checkRedirectIdentifier validates redirect.identifier: one of the built-in identifiers or a
// custom field name.
func checkRedirectIdentifier(id string) string {
	switch id {
	case IdentifierUserID, IdentifierUsername, IdentifierURLAuthToken:
		return ""
	}
	if msg := checkCustomFieldName(id); msg != "" {
		return "must be userId, username, urlAuthToken or a custom field name (" + msg + ")"
	}
	return ""
}

// hasControl reports whether s is not valid UTF-8 or holds a control character (line breaks
// and tabs included: every value checked with it is a single line).
func hasControl(s string) bool {
	if !utf8.ValidString(s) {
		return true
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return true
		}
	}
	return false
}
