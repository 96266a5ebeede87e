package survey

import (
	"net/url"
	"strings"

	"github.com/dispatch24/dispatch24/internal/store"
)

// Redirect identifiers (CONTRACT section 4): which respondent value replaces {identifier} in
// a survey's redirect URL. Any other value names a respondent custom field.
const (
	IdentifierUserID       = "userId"
	IdentifierUsername     = "username"
	IdentifierURLAuthToken = "urlAuthToken"
)

// CustomField is one respondent custom field (the store's record, marshalled as
// {"name", "value"}).
type CustomField = store.CustomField

// RedirectTarget is what a redirect URL can be filled from.
type RedirectTarget struct {
	UserID       string
	Username     string
	AuthToken    string
	CustomFields []CustomField
}

// RedirectURL fills {identifier} in tmpl with the respondent's value named by identifier,
// URL-encoded. It returns "" when tmpl is empty. A custom field the respondent lacks fills in
// as the empty string, so the third party still receives the respondent back.
func RedirectURL(tmpl, identifier string, t RedirectTarget) string {
	if tmpl == "" {
		return ""
	}
	var v string
	switch identifier {
	case IdentifierUserID:
		v = t.UserID
	case IdentifierUsername, "":
		v = t.Username
	case IdentifierURLAuthToken:
		v = t.AuthToken
	default:
		for _, f := range t.CustomFields {
			if f.Name == identifier {
				v = f.Value
				break
			}
		}
	}
	return strings.ReplaceAll(tmpl, "{identifier}", url.QueryEscape(v))
}
