package endpoint

import (
	"context"
	"fmt"
	"time"

	"github.com/dispatch24/dispatch24/internal/secret"
	"github.com/dispatch24/dispatch24/internal/store"
)

// Store reads and writes endpoints through the webhooks family of the store driver
// (db.Driver.Webhooks()). Webhook secrets are sealed with keys as they are written and opened
// as they are read. RecordTest, transitional, still writes the rows of a test send with its
// own SQL until the events and deliveries owners take them.
type Store struct {
	db   *store.DB
	keys *secret.Keyring
}

// NewStore returns the endpoint queries over db, sealing secrets with keys.
func NewStore(db *store.DB, keys *secret.Keyring) *Store { return &Store{db: db, keys: keys} }

// open returns the endpoint of the stored webhook w, its secrets opened.
func (s *Store) open(w *store.Webhook) (*Endpoint, error) {
	e := &Endpoint{
		ID:                  w.ID,
		SurveyID:            w.SurveyID,
		URL:                 w.URL,
		Description:         w.Description,
		Events:              w.Events,
		PreviousSecretUntil: w.PreviousSecretUntil,
		Disabled:            w.Disabled,
		DisabledReason:      w.DisabledReason,
		DisabledAt:          w.DisabledAt,
		ConsecutiveFailures: w.ConsecutiveFailures,
		FirstFailureAt:      w.FirstFailureAt,
		CreatedAt:           w.CreatedAt,
		UpdatedAt:           w.UpdatedAt,
	}
	var err error
	if e.Secret, err = s.keys.Open(secret.WebhookSecret(e.ID), w.Secret); err != nil {
		return nil, err
	}
	if w.PreviousSecret != "" {
		if e.PreviousSecret, err = s.keys.Open(secret.WebhookSecret(e.ID), w.PreviousSecret); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// Create inserts e. It returns ErrSurveyNotFound when e.SurveyID does not exist.
func (s *Store) Create(ctx context.Context, e *Endpoint) error {
	w := &store.Webhook{
		ID:          e.ID,
		SurveyID:    e.SurveyID,
		URL:         e.URL,
		Description: e.Description,
		Events:      e.Events,
		Secret:      s.keys.Seal(secret.WebhookSecret(e.ID), e.Secret),
		CreatedAt:   e.CreatedAt,
		UpdatedAt:   e.CreatedAt,
	}
	// The survey is checked through its family in the transaction that inserts the webhook.
	return s.db.Driver.InTx(ctx, func(tx store.Executor) error {
		ok, err := tx.Surveys().SurveyExists(ctx, w.SurveyID)
		if err != nil {
			return err
		}
		if !ok {
			return ErrSurveyNotFound
		}
		return tx.Webhooks().Create(ctx, w)
	})
}

// Get returns the endpoint id of surveyID; store.ErrNotFound when there is none (including
// when it belongs to another survey).
func (s *Store) Get(ctx context.Context, surveyID, id string) (*Endpoint, error) {
	w, err := s.db.Driver.Webhooks().Get(ctx, surveyID, id)
	if err != nil {
		return nil, err
	}
	e, err := s.open(w)
	if err != nil {
		return nil, fmt.Errorf("getting webhook: %w", err)
	}
	return e, nil
}

// List returns the endpoints of surveyID, oldest first.
func (s *Store) List(ctx context.Context, surveyID string) ([]*Endpoint, error) {
	ws, err := s.db.Driver.Webhooks().List(ctx, surveyID)
	if err != nil {
		return nil, err
	}
	out := make([]*Endpoint, 0, len(ws))
	for _, w := range ws {
		e, err := s.open(w)
		if err != nil {
			return nil, fmt.Errorf("listing webhooks: %w", err)
		}
		out = append(out, e)
	}
	return out, nil
}

// Patch is a change to an endpoint; nil fields stay as they are.
type Patch struct {
	URL         *string
	Events      []string // nil: unchanged
	Description *string
	Disabled    *bool
}

// Update applies p to the endpoint id of surveyID at now and returns the result. Disabling
// records ReasonManual; re-enabling a disabled endpoint clears the reason and resets the
// failure counters, so the engine's disabling rule starts afresh.
func (s *Store) Update(ctx context.Context, surveyID, id string, p Patch, now time.Time) (*Endpoint, error) {
	var out *Endpoint
	err := s.db.Driver.InTx(ctx, func(tx store.Executor) error {
		// The row lock keeps the engine's failure-counter updates from interleaving with the
		// read below.
		w, err := tx.Webhooks().GetForUpdate(ctx, surveyID, id)
		if err != nil {
			return fmt.Errorf("updating webhook: %w", err)
		}
		if p.URL != nil {
			w.URL = *p.URL
		}
		if p.Events != nil {
			w.Events = p.Events
		}
		if p.Description != nil {
			w.Description = *p.Description
		}
		if p.Disabled != nil && *p.Disabled != w.Disabled {
			w.Disabled = *p.Disabled
			if w.Disabled {
				w.DisabledReason, w.DisabledAt = ReasonManual, now
			} else {
				w.DisabledReason, w.DisabledAt = "", time.Time{}
				w.ConsecutiveFailures, w.FirstFailureAt = 0, time.Time{}
			}
		}
		w.UpdatedAt = now
		if err := tx.Webhooks().Update(ctx, w); err != nil {
			return err
		}
		if out, err = s.open(w); err != nil {
			return fmt.Errorf("updating webhook: %w", err)
		}
		return nil
	})
	return out, err
}

// Delete removes the endpoint id of surveyID; store.ErrNotFound when there is none. Its
// deliveries stay as history.
func (s *Store) Delete(ctx context.Context, surveyID, id string) error {
	return s.db.Driver.Webhooks().Delete(ctx, surveyID, id)
}

// RotateSecret makes newSecret the endpoint's signing secret and keeps the current one signing
// until until. A rotation during the grace period of another drops the oldest secret.
func (s *Store) RotateSecret(ctx context.Context, surveyID, id, newSecret string, until, now time.Time) (*Endpoint, error) {
	w, err := s.db.Driver.Webhooks().RotateSecret(ctx, surveyID, id,
		s.keys.Seal(secret.WebhookSecret(id), newSecret), until, now)
	if err != nil {
		return nil, err
	}
	e, err := s.open(w)
	if err != nil {
		return nil, fmt.Errorf("rotating webhook secret: %w", err)
	}
	return e, nil
}

// TestRecord is what a test send leaves behind: an archived event (already marked published,
// so the outbox relay never sends it, while replays can still read it), a delivery with its
// final status, and the delivery's one attempt.
type TestRecord struct {
	EventID    string
	EventType  string
	SurveyID   string
	Subject    string
	Payload    []byte
	Headers    []byte // trace context as a JSON object
	WebhookID  string
	URL        string
	DeliveryID string
	Delivered  bool
	StatusCode int    // 0: no answer
	Error      string // the attempt's error code (the delivery's lastError); empty when delivered
	// AttemptError is the attempt log's error (delivery.AttemptError: the code and what
	// happened, without internal addresses).
	AttemptError string
	Body         string // the answer's body, at most 4 KiB
	StartedAt    time.Time
	Duration     time.Duration
	Now          time.Time
}

// RecordTest writes r in one transaction.
func (s *Store) RecordTest(ctx context.Context, r *TestRecord) error {
	now := store.Micros(r.Now)
	status := "failed"
	if r.Delivered {
		status = "succeeded"
	}
	var code *int
	if r.StatusCode != 0 {
		code = &r.StatusCode
	}
	return s.db.InTx(ctx, func(tx store.Querier) error {
		_, err := tx.Exec(ctx, `INSERT INTO events (id, type, survey_id, subject, payload, headers, created_at, published_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $7)`,
			r.EventID, r.EventType, r.SurveyID, r.Subject, r.Payload, r.Headers, store.Micros(r.StartedAt))
		if err != nil {
			return fmt.Errorf("recording test event: %w", err)
		}
		_, err = tx.Exec(ctx, `INSERT INTO deliveries (id, event_id, webhook_id, survey_id, type, url, status, attempts,
			last_status_code, last_error, next_attempt_at, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8, $9, NULL, $10, $11)`,
			r.DeliveryID, r.EventID, r.WebhookID, r.SurveyID, r.EventType, r.URL, status, code, r.Error,
			store.Micros(r.StartedAt), now)
		if err != nil {
			return fmt.Errorf("recording test delivery: %w", err)
		}
		_, err = tx.Exec(ctx, `INSERT INTO delivery_attempts (delivery_id, n, started_at, duration_ms, status_code, error, response_body)
			VALUES ($1, 1, $2, $3, $4, $5, $6)`,
			r.DeliveryID, store.Micros(r.StartedAt), r.Duration.Milliseconds(), code, r.AttemptError, r.Body)
		if err != nil {
			return fmt.Errorf("recording test attempt: %w", err)
		}
		return nil
	})
}
