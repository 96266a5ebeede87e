package auth

import (
	"context"

	"github.com/dispatch24/dispatch24/internal/store"
)

// Respondents is what signing respondents in needs of their owner, internal/survey; its
// *survey.Store satisfies it. Reads return store.ErrNotFound when there is no such respondent;
// a respondent without a password (token sign-in only) has an empty PasswordHash.
type Respondents interface {
	// Respondent returns a survey's respondent by user name.
	Respondent(ctx context.Context, surveyID, username string) (store.Respondent, error)
	// RespondentByAuthToken returns the respondent whose URL authentication token is token.
	RespondentByAuthToken(ctx context.Context, token string) (store.Respondent, error)
	// SwapPasswordHash replaces a respondent's password hash by next while it is still old,
	// and reports whether it did (a password changed meanwhile is kept).
	SwapPasswordHash(ctx context.Context, id, old, next string) (bool, error)
}
