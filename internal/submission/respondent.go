package submission

import (
	"encoding/json"

	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/survey"
)

// followUpURL is the survey's redirect URL filled for the respondent ri ("" when the survey
// has none).
func followUpURL(ri *store.Submitter, userID string) string {
	if ri.RedirectURL == "" {
		return ""
	}
	t := survey.RedirectTarget{UserID: userID, Username: ri.Username, AuthToken: ri.AuthToken}
	switch ri.RedirectIdentifier {
	case survey.IdentifierUserID, survey.IdentifierUsername, survey.IdentifierURLAuthToken, "":
	default:
		// A custom field: decoded only when the redirect needs one. A damaged document
		// fills in as empty, like a missing field.
		_ = json.Unmarshal(ri.CustomFields, &t.CustomFields)
	}
	return survey.RedirectURL(ri.RedirectURL, ri.RedirectIdentifier, t)
}
