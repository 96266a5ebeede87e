package dispatch

import (
	"fmt"

	"github.com/dispatch24/dispatch24/internal/secret"
)

// openJWTKey opens a survey's jwtSecret as loaded from the store (sealed with SECRETS_KEY, or
// in clear from before sealing).
func (c *endpointCache) openJWTKey(surveyID, stored string) ([]byte, error) {
	key, err := c.keys.Open(secret.SurveyJWTSecret(surveyID), stored)
	if err != nil {
		return nil, fmt.Errorf("loading endpoints of survey %s: %w", surveyID, err)
	}
	return []byte(key), nil
}

// openSecrets replaces ep's signing secrets, as loaded from the store, with their opened
// values. It runs once per load of a survey's endpoints; deliveries use the result.
func (c *endpointCache) openSecrets(ep *endpoint) error {
	place := secret.WebhookSecret(ep.ID)
	cur, err := c.keys.Open(place, ep.current[0])
	if err != nil {
		return fmt.Errorf("loading endpoints of survey %s: %w", ep.SurveyID, err)
	}
	ep.current = []string{cur}
	if len(ep.both) < 2 {
		ep.both = ep.current
		return nil
	}
	prev, err := c.keys.Open(place, ep.both[1])
	if err != nil {
		return fmt.Errorf("loading endpoints of survey %s: %w", ep.SurveyID, err)
	}
	ep.both = []string{cur, prev}
	return nil
}
