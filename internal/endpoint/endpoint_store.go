package endpoint

import (
	"context"
	"fmt"
	"time"

	"github.com/dispatch24/dispatch24/internal/outbox"
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
		SignatureScheme:     w.SignatureScheme,
		PreviousSecretUntil: w.PreviousSecretUntil,
		Ordering:            w.Ordering,
		Disabled:            w.Disabled,
		DisabledReason:      w.DisabledReason,
		DisabledAt:          w.DisabledAt,
		ConsecutiveFailures: w.ConsecutiveFailures,
		FirstFailureAt:      w.FirstFailureAt,
		RateLimit:           w.RateLimit,
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

// Create inserts e, whose Secret must be of its SignatureScheme (SchemeV1 when empty). It returns ErrSurveyNotFound when e.SurveyID does not exist.
func (s *Store) Create(ctx context.Context, e *Endpoint) error {
	if e.SignatureScheme == "" {
		e.SignatureScheme = SchemeV1
	}
	if e.Ordering == "" {
		e.Ordering = OrderingNone
	}
	w := &store.Webhook{
		ID:              e.ID,
		SurveyID:        e.SurveyID,
		URL:             e.URL,
		Description:     e.Description,
		Events:          e.Events,
		SignatureScheme: e.SignatureScheme,
		Secret:          s.keys.Seal(secret.WebhookSecret(e.ID), e.Secret),
		RateLimit:       e.RateLimit,
		Ordering:        e.Ordering,
		CreatedAt:       e.CreatedAt,
		UpdatedAt:       e.CreatedAt,
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
	// SignatureScheme, when it differs from the endpoint's, switches the scheme: a rotation
	// to a fresh secret of the new scheme, the current one signing until PreviousUntil.
	SignatureScheme *string
	PreviousUntil   time.Time
	// RateLimit sets the deliveries a second; a pointer to 0 removes the limit.
	RateLimit *int
	// Ordering sets the endpoint's ordering (OrderingNone or OrderingFIFO). Deliveries already
	// waiting keep the order they were stored with.
	Ordering *string
}

// Update applies p to the endpoint id of surveyID at now and returns the result. Disabling
// records ReasonManual; re-enabling a disabled endpoint clears the reason and resets the
// failure counters, so the engine's disabling rule starts afresh. switched reports whether
// the patch switched the signature scheme, rotating the secret. Disabling an enabled
// endpoint writes a webhook.disabled event (reason ReasonManual) to the outbox in the same
// transaction, whose id is disabledEvent ("" when the patch disabled nothing).
func (s *Store) Update(ctx context.Context, surveyID, id string, p Patch, now time.Time) (out *Endpoint, switched bool, disabledEvent string, err error) {
	err = s.db.Driver.InTx(ctx, func(tx store.Executor) error {
		disabledEvent = ""
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
		disabling := p.Disabled != nil && *p.Disabled && !w.Disabled
		if p.RateLimit != nil {
			w.RateLimit = *p.RateLimit
		}
		if p.Ordering != nil {
			w.Ordering = *p.Ordering
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
		if p.SignatureScheme != nil && *p.SignatureScheme != w.SignatureScheme {
			rotated, err := tx.Webhooks().RotateSecret(ctx, surveyID, id, *p.SignatureScheme,
				s.keys.Seal(secret.WebhookSecret(id), newSecret(*p.SignatureScheme)), p.PreviousUntil, now)
			if err != nil {
				return fmt.Errorf("updating webhook: %w", err)
			}
			w.SignatureScheme, w.Secret = rotated.SignatureScheme, rotated.Secret
			w.PreviousSecret, w.PreviousSecretUntil = rotated.PreviousSecret, rotated.PreviousSecretUntil
			switched = true
		}
		w.UpdatedAt = now
		if err := tx.Webhooks().Update(ctx, w); err != nil {
			return err
		}
		if disabling {
			if disabledEvent, err = writeDisabled(ctx, tx, w, now); err != nil {
				return fmt.Errorf("updating webhook: %w", err)
			}
		}
		if out, err = s.open(w); err != nil {
			return fmt.Errorf("updating webhook: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, false, "", err
	}
	return out, switched, disabledEvent, nil
}

// writeDisabled writes the webhook.disabled event of w, disabled by hand at now, through tx
// (the disabling's transaction) and returns its id. The relay's sweep publishes it.
func writeDisabled(ctx context.Context, tx store.Executor, w *store.Webhook, now time.Time) (string, error) {
	// Read after the update moved the version, so the fan-out sees w disabled.
	version, err := tx.Webhooks().Version(ctx)
	if err != nil {
		return "", err
	}
	e, err := outbox.WebhookDisabled(w.SurveyID, w.ID, w.DisabledReason, now, version)
	if err != nil {
		return "", err
	}
	if err := outbox.Insert(ctx, tx, time.Time{}, []outbox.Entry{e}); err != nil {
		return "", err
	}
	return e.Message.ID, nil
}

// Delete removes the endpoint id of surveyID; store.ErrNotFound when there is none. Its
// deliveries stay as history.
func (s *Store) Delete(ctx context.Context, surveyID, id string) error {
	return s.db.Driver.Webhooks().Delete(ctx, surveyID, id)
}

// RotateSecret gives the endpoint a fresh signing secret of its scheme (a whsk_ key for v1a)
// and keeps the current one signing until until, and returns the endpoint with its new secret.
// A rotation during the grace period of another drops the oldest secret.
func (s *Store) RotateSecret(ctx context.Context, surveyID, id string, until, now time.Time) (*Endpoint, error) {
	var out *Endpoint
	err := s.db.Driver.InTx(ctx, func(tx store.Executor) error {
		// The lock holds the scheme still, so that the new secret is of the stored scheme
		// whatever PATCH runs meanwhile.
		w, err := tx.Webhooks().GetForUpdate(ctx, surveyID, id)
		if err != nil {
			return err
		}
		w, err = tx.Webhooks().RotateSecret(ctx, surveyID, id, w.SignatureScheme,
			s.keys.Seal(secret.WebhookSecret(id), newSecret(w.SignatureScheme)), until, now)
		if err != nil {
			return err
		}
		if out, err = s.open(w); err != nil {
			return fmt.Errorf("rotating webhook secret: %w", err)
		}
		return nil
	})
	return out, err
}
