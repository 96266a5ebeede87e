package endpoint

import (
	"context"
	"fmt"
	"time"

	"github.com/dispatch24/dispatch24/internal/secret"
	"github.com/dispatch24/dispatch24/internal/store"
)

// SurveyEndpoints is a survey's endpoints and jwtSecret as the dispatch engine needs them: read
// in one snapshot with the webhooks version, so right for every event accepted at Version or
// earlier (migration 060).
type SurveyEndpoints struct {
	Version int64
	// Found is false when the survey does not exist: its events go nowhere.
	Found bool
	// JWTSecret is the survey's jwtSecret, opened; "" when it has none.
	JWTSecret string
	// Endpoints are the survey's endpoints, oldest first, their secrets opened.
	Endpoints []*Endpoint
}

// LoadSurvey reads the webhooks version, the survey's jwtSecret and its endpoints in one
// statement and opens their secrets.
func (s *Store) LoadSurvey(ctx context.Context, surveyID string) (*SurveyEndpoints, error) {
	sw, err := s.db.Driver.Webhooks().LoadSurvey(ctx, surveyID)
	if err != nil {
		return nil, fmt.Errorf("loading endpoints of survey %s: %w", surveyID, err)
	}
	out := &SurveyEndpoints{Version: sw.Version, Found: sw.Found, Endpoints: make([]*Endpoint, 0, len(sw.Webhooks))}
	if sw.JWTSecret != "" {
		if out.JWTSecret, err = s.keys.Open(secret.SurveyJWTSecret(surveyID), sw.JWTSecret); err != nil {
			return nil, fmt.Errorf("loading endpoints of survey %s: %w", surveyID, err)
		}
	}
	for _, w := range sw.Webhooks {
		e, err := s.open(w)
		if err != nil {
			return nil, fmt.Errorf("loading endpoints of survey %s: %w", surveyID, err)
		}
		out.Endpoints = append(out.Endpoints, e)
	}
	return out, nil
}

// Disable disables the endpoint id with reason at now, as the dispatch engine does when a
// receiver answers 410 Gone, and returns it; nil when there is no such endpoint or it is
// disabled already. Re-enabling goes through Update.
func (s *Store) Disable(ctx context.Context, id, reason string, now time.Time) (*store.DisabledWebhook, error) {
	return s.db.Driver.Webhooks().Disable(ctx, id, reason, now)
}

// TakeTokens takes up to t.Want of the rate-limit tokens shared by every dispatcher of the
// endpoint t.WebhookID (store.Webhooks.TakeTokens).
func (s *Store) TakeTokens(ctx context.Context, t store.TokenTake) (store.TokenGrant, error) {
	return s.db.Driver.Webhooks().TakeTokens(ctx, t)
}
