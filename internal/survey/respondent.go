package survey

import (
	"crypto/rand"
	"fmt"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/dispatch24/dispatch24/internal/ids"
	"github.com/dispatch24/dispatch24/internal/store"
)

// Limits of respondent values, the same for the admin API, the CSV import and create-user
// tokens.
const (
	MaxUsernameLength         = 256
	MaxPasswordLength         = 256
	MaxNameLength             = 512
	MaxCustomFields           = 64
	MaxCustomFieldNameLength  = 64
	MaxCustomFieldValueLength = 2048
)

// Respondent is a survey respondent's account as stored: the store's record, one type for the
// whole code base.
type Respondent = store.Respondent

// newRespondentID returns a fresh user id. UUIDv7 ids grow with time, which keeps keyset
// pages in insertion order among rows created in the same microsecond.
func newRespondentID() string {
	return ids.New("res_")
}

const tokenAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// NewAuthToken returns a random URL authentication token of n letters and digits from
// crypto/rand, without modulo bias.
func NewAuthToken(n int) (string, error) {
	out := make([]byte, 0, n)
	buf := make([]byte, n+n/4+8)
	for len(out) < n {
		if _, err := rand.Read(buf); err != nil {
			return "", fmt.Errorf("reading random bytes: %w", err)
		}
		for _, b := range buf {
			// 248 = 4×62: bytes at or above it would favour the first symbols.
			if b < 248 && len(out) < n {
				out = append(out, tokenAlphabet[b%62])
			}
		}
	}
	return string(out), nil
}

// AuthURLs builds a respondent's authentication URLs from the survey app's base URL.
func AuthURLs(surveyAppURL, surveyID, authToken string) (authURL, shortAuthURL string) {
	base := strings.TrimRight(surveyAppURL, "/")
	return base + "/" + url.PathEscape(surveyID) + "?auth=" + url.QueryEscape(authToken),
		base + "/a/" + url.PathEscape(authToken)
}

// checkUsername validates a username: 1–256 characters of valid UTF-8, no control characters,
// no surrounding spaces (which would make two accounts look the same).
func checkUsername(u string) string {
	switch {
	case u == "":
		return "is required"
	case utf8.RuneCountInString(u) > MaxUsernameLength:
		return fmt.Sprintf("must be at most %d characters", MaxUsernameLength)
	case hasControl(u):
		return "must be UTF-8 text without control characters"
	case strings.TrimSpace(u) != u:
		return "must not start or end with spaces"
	}
	return ""
}

// checkPassword validates a password being set.
func checkPassword(pw string) string {
	switch {
	case pw == "":
		return "must not be empty"
	case utf8.RuneCountInString(pw) > MaxPasswordLength:
		return fmt.Sprintf("must be at most %d characters", MaxPasswordLength)
	case !utf8.ValidString(pw) || strings.ContainsRune(pw, 0):
		return "must be valid UTF-8 text"
	}
	return ""
}

// checkName validates a respondent's display name (may be empty).
func checkName(name string) string {
	switch {
	case utf8.RuneCountInString(name) > MaxNameLength:
		return fmt.Sprintf("must be at most %d characters", MaxNameLength)
	case hasControl(name):
		return "must be UTF-8 text without control characters"
	}
	return ""
}

// checkCustomFieldName validates a custom field's name.
func checkCustomFieldName(name string) string {
	switch {
	case strings.TrimSpace(name) == "":
		return "name is required"
	case utf8.RuneCountInString(name) > MaxCustomFieldNameLength:
		return fmt.Sprintf("name must be at most %d characters", MaxCustomFieldNameLength)
	case hasControl(name):
		return "name must be UTF-8 text without control characters"
	}
	return ""
}

// checkCustomFieldValue validates a custom field's value: any text (line breaks included, it
// may be a note) but NUL, which PostgreSQL cannot store.
func checkCustomFieldValue(v string) string {
	switch {
	case utf8.RuneCountInString(v) > MaxCustomFieldValueLength:
		return fmt.Sprintf("value must be at most %d characters", MaxCustomFieldValueLength)
	case !utf8.ValidString(v) || strings.ContainsRune(v, 0):
		return "value must be valid UTF-8 text without NUL"
	}
	return ""
}

// checkCustomFields validates a list of custom fields, returning field errors keyed like
// "customFields[2].name".
func checkCustomFields(prefix string, fields []CustomField) []fieldMsg {
	var errs []fieldMsg
	if len(fields) > MaxCustomFields {
		return []fieldMsg{{prefix, fmt.Sprintf("must have at most %d fields", MaxCustomFields)}}
	}
	seen := make(map[string]bool, len(fields))
	for i, f := range fields {
		at := fmt.Sprintf("%s[%d]", prefix, i)
		if msg := checkCustomFieldName(f.Name); msg != "" {
			errs = append(errs, fieldMsg{at + ".name", msg})
		} else if seen[f.Name] {
			errs = append(errs, fieldMsg{at + ".name", "duplicates an earlier field"})
		}
		seen[f.Name] = true
		if msg := checkCustomFieldValue(f.Value); msg != "" {
			errs = append(errs, fieldMsg{at + ".value", msg})
		}
	}
	return errs
}

// fieldMsg is a validation message for one field, turned into httpapi.FieldError by handlers.
type fieldMsg struct {
	field, msg string
}

// mergeCustomFields returns base with every field of update set by name: updated fields keep
// their place, new ones are appended.
func mergeCustomFields(base, update []CustomField) []CustomField {
	out := append([]CustomField(nil), base...)
	for _, u := range update {
		found := false
		for i := range out {
			if out[i].Name == u.Name {
				out[i].Value = u.Value
				found = true
				break
			}
		}
		if !found {
			out = append(out, u)
		}
	}
	return out
}
