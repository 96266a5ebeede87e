package endpoint

import "context"

// SurveySecrets is what test sends need of the surveys' owner, internal/survey; its
// *survey.Store satisfies it.
type SurveySecrets interface {
	// JWTSecret returns a survey's jwtSecret opened, "" when none is set; store.ErrNotFound
	// when the survey does not exist.
	JWTSecret(ctx context.Context, surveyID string) (string, error)
}
