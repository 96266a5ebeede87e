package endpoint

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dispatch24/dispatch24/internal/secret"
	"github.com/dispatch24/dispatch24/internal/store"
)

// Store holds the queries of the webhooks table (and the rows a test send records). Webhook
// secrets are sealed with keys as they are written and opened as they are read.
type Store struct {
	db   *store.DB
	keys *secret.Keyring
}

// NewStore returns the endpoint queries over db, sealing secrets with keys.
func NewStore(db *store.DB, keys *secret.Keyring) *Store { return &Store{db: db, keys: keys} }

const endpointColumns = `id, survey_id, url, description, events, secret, previous_secret, previous_secret_until,
	disabled, disabled_reason, disabled_at, consecutive_failures, first_failure_at, created_at, updated_at`

func (s *Store) scanEndpoint(row store.Row) (*Endpoint, error) {
	var (
		e                                   Endpoint
		evs                                 string
		prevSecret                          *string
		prevUntil, disabledAt, firstFailure *int64
		createdAt, updatedAt                int64
	)
	err := row.Scan(&e.ID, &e.SurveyID, &e.URL, &e.Description, &evs, &e.Secret, &prevSecret, &prevUntil,
		&e.Disabled, &e.DisabledReason, &disabledAt, &e.ConsecutiveFailures, &firstFailure, &createdAt, &updatedAt)
	if err != nil {
		return nil, err
	}
	e.Events = splitEvents(evs)
	if e.Secret, err = s.keys.Open(secret.WebhookSecret(e.ID), e.Secret); err != nil {
		return nil, err
	}
	if prevSecret != nil {
		if e.PreviousSecret, err = s.keys.Open(secret.WebhookSecret(e.ID), *prevSecret); err != nil {
			return nil, err
		}
	}
	e.PreviousSecretUntil = store.NullMicros(prevUntil)
	e.DisabledAt = store.NullMicros(disabledAt)
	e.FirstFailureAt = store.NullMicros(firstFailure)
	e.CreatedAt = store.FromMicros(createdAt)
	e.UpdatedAt = store.FromMicros(updatedAt)
	return &e, nil
}

// Create inserts e. It returns ErrSurveyNotFound when e.SurveyID does not exist.
func (s *Store) Create(ctx context.Context, e *Endpoint) error {
	return s.db.InTx(ctx, func(tx store.Querier) error {
		if err := surveyExists(ctx, tx, e.SurveyID); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO webhooks (id, survey_id, url, description, events, secret,
			disabled, disabled_reason, consecutive_failures, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, '', 0, $8, $8)`,
			e.ID, e.SurveyID, e.URL, e.Description, joinEvents(e.Events), s.keys.Seal(secret.WebhookSecret(e.ID), e.Secret),
			false, store.Micros(e.CreatedAt))
		if err != nil {
			return fmt.Errorf("inserting webhook: %w", err)
		}
		return nil
	})
}

func surveyExists(ctx context.Context, q store.Querier, surveyID string) error {
	var one int
	err := q.QueryRow(ctx, "SELECT 1 FROM surveys WHERE id = $1", surveyID).Scan(&one)
	if errors.Is(err, store.ErrNotFound) {
		return ErrSurveyNotFound
	}
	if err != nil {
		return fmt.Errorf("looking up survey: %w", err)
	}
	return nil
}

// Get returns the endpoint id of surveyID; store.ErrNotFound when there is none (including
// when it belongs to another survey).
func (s *Store) Get(ctx context.Context, surveyID, id string) (*Endpoint, error) {
	e, err := s.scanEndpoint(s.db.QueryRow(ctx,
		"SELECT "+endpointColumns+" FROM webhooks WHERE id = $1 AND survey_id = $2", id, surveyID))
	if err != nil {
		return nil, fmt.Errorf("getting webhook: %w", err)
	}
	return e, nil
}

// List returns the endpoints of surveyID, oldest first.
func (s *Store) List(ctx context.Context, surveyID string) ([]*Endpoint, error) {
	rows, err := s.db.Query(ctx,
		"SELECT "+endpointColumns+" FROM webhooks WHERE survey_id = $1 ORDER BY created_at, id", surveyID)
	if err != nil {
		return nil, fmt.Errorf("listing webhooks: %w", err)
	}
	defer rows.Close()
	out := []*Endpoint{}
	for rows.Next() {
		e, err := s.scanEndpoint(rows)
		if err != nil {
			return nil, fmt.Errorf("listing webhooks: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing webhooks: %w", err)
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
	err := s.db.InTx(ctx, func(tx store.Querier) error {
		// The row lock keeps the engine's failure-counter updates from interleaving with the
		// read below (SQLite's single writer serialises them anyway).
		e, err := s.scanEndpoint(tx.QueryRow(ctx,
			"SELECT "+endpointColumns+" FROM webhooks WHERE id = $1 AND survey_id = $2"+forUpdate(s.db.Dialect), id, surveyID))
		if err != nil {
			return fmt.Errorf("updating webhook: %w", err)
		}
		if p.URL != nil {
			e.URL = *p.URL
		}
		if p.Events != nil {
			e.Events = p.Events
		}
		if p.Description != nil {
			e.Description = *p.Description
		}
		if p.Disabled != nil && *p.Disabled != e.Disabled {
			e.Disabled = *p.Disabled
			if e.Disabled {
				e.DisabledReason, e.DisabledAt = ReasonManual, now
			} else {
				e.DisabledReason, e.DisabledAt = "", time.Time{}
				e.ConsecutiveFailures, e.FirstFailureAt = 0, time.Time{}
			}
		}
		e.UpdatedAt = now
		_, err = tx.Exec(ctx, `UPDATE webhooks SET url = $3, events = $4, description = $5, disabled = $6,
			disabled_reason = $7, disabled_at = $8, consecutive_failures = $9, first_failure_at = $10, updated_at = $11
			WHERE id = $1 AND survey_id = $2`,
			id, surveyID, e.URL, joinEvents(e.Events), e.Description, e.Disabled, e.DisabledReason,
			nullMicros(e.DisabledAt), e.ConsecutiveFailures, nullMicros(e.FirstFailureAt), store.Micros(now))
		if err != nil {
			return fmt.Errorf("updating webhook: %w", err)
		}
		out = e
		return nil
	})
	return out, err
}

// Delete removes the endpoint id of surveyID; store.ErrNotFound when there is none. Its
// deliveries stay as history.
func (s *Store) Delete(ctx context.Context, surveyID, id string) error {
	n, err := s.db.Exec(ctx, "DELETE FROM webhooks WHERE id = $1 AND survey_id = $2", id, surveyID)
	if err != nil {
		return fmt.Errorf("deleting webhook: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("deleting webhook: %w", store.ErrNotFound)
	}
	return nil
}

// RotateSecret makes newSecret the endpoint's signing secret and keeps the current one signing
// until until. A rotation during the grace period of another drops the oldest secret.
func (s *Store) RotateSecret(ctx context.Context, surveyID, id, newSecret string, until, now time.Time) (*Endpoint, error) {
	var out *Endpoint
	err := s.db.InTx(ctx, func(tx store.Querier) error {
		n, err := tx.Exec(ctx, `UPDATE webhooks SET previous_secret = secret, previous_secret_until = $3,
			secret = $4, updated_at = $5 WHERE id = $1 AND survey_id = $2`,
			id, surveyID, store.Micros(until), s.keys.Seal(secret.WebhookSecret(id), newSecret), store.Micros(now))
		if err != nil {
			return fmt.Errorf("rotating webhook secret: %w", err)
		}
		if n == 0 {
			return fmt.Errorf("rotating webhook secret: %w", store.ErrNotFound)
		}
		out, err = s.scanEndpoint(tx.QueryRow(ctx,
			"SELECT "+endpointColumns+" FROM webhooks WHERE id = $1 AND survey_id = $2", id, surveyID))
		if err != nil {
			return fmt.Errorf("rotating webhook secret: %w", err)
		}
		return nil
	})
	return out, err
}

// SurveyJWTSecret returns the survey's jwtSecret, empty when none is set.
func (s *Store) SurveyJWTSecret(ctx context.Context, surveyID string) (string, error) {
	var stored *string
	err := s.db.QueryRow(ctx, "SELECT jwt_secret FROM surveys WHERE id = $1", surveyID).Scan(&stored)
	if err != nil {
		return "", fmt.Errorf("reading survey jwt secret: %w", err)
	}
	if stored == nil {
		return "", nil
	}
	return s.keys.Open(secret.SurveyJWTSecret(surveyID), *stored)
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
	// AttemptError is the attempt log's error (dispatch.AttemptError: the code and what
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

// forUpdate locks the selected row on PostgreSQL; SQLite's writer transactions are exclusive.
func forUpdate(d store.Dialect) string {
	if d == store.Postgres {
		return " FOR UPDATE"
	}
	return ""
}

func nullMicros(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	us := store.Micros(t)
	return &us
}
