package delivery

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/dispatch24/dispatch24/internal/store"
)

// Errors of replaying one delivery.
var (
	// ErrEndpointDisabled: the delivery's endpoint is disabled; re-enable it first.
	ErrEndpointDisabled = errors.New("endpoint disabled")
	// ErrEndpointDeleted: the delivery's endpoint no longer exists.
	ErrEndpointDeleted = errors.New("endpoint deleted")
	// ErrReplayRunning: a replay with the same filter is running.
	ErrReplayRunning = errors.New("a replay with the same filter is running")
)

// Store holds the API side's queries of the deliveries, delivery_attempts and replays
// tables. The dispatch engine has its own queries for attempting deliveries.
type Store struct {
	db *store.DB
}

// NewStore returns the delivery queries over db.
func NewStore(db *store.DB) *Store { return &Store{db: db} }

const deliveryColumns = `d.id, d.event_id, d.type, d.survey_id, d.webhook_id, d.url, d.status, d.attempts,
	d.last_status_code, d.last_error, d.next_attempt_at, d.replay_of, d.replay_id, d.created_at, d.updated_at`

func scanDelivery(row store.Row) (*Delivery, error) {
	var (
		d                    Delivery
		code                 *int64
		next                 *int64
		replayOf, replayID   *string
		createdAt, updatedAt int64
	)
	err := row.Scan(&d.ID, &d.EventID, &d.Type, &d.SurveyID, &d.WebhookID, &d.URL, &d.Status, &d.Attempts,
		&code, &d.LastError, &next, &replayOf, &replayID, &createdAt, &updatedAt)
	if err != nil {
		return nil, err
	}
	if code != nil {
		c := int(*code)
		d.LastStatusCode = &c
	}
	if next != nil {
		t := store.FromMicros(*next)
		d.NextAttemptAt = &t
	}
	if replayOf != nil {
		d.ReplayOf = *replayOf
	}
	if replayID != nil {
		d.ReplayID = *replayID
	}
	d.CreatedAt = store.FromMicros(createdAt)
	d.UpdatedAt = store.FromMicros(updatedAt)
	return &d, nil
}

// sqlWhere builds a WHERE clause with numbered placeholders.
type sqlWhere struct {
	conds []string
	args  []any
}

// arg adds a value and returns its placeholder.
func (w *sqlWhere) arg(v any) string {
	w.args = append(w.args, v)
	return "$" + strconv.Itoa(len(w.args))
}

// in returns "(…)" with a placeholder for each value.
func (w *sqlWhere) in(vals []string) string {
	ph := make([]string, len(vals))
	for i, v := range vals {
		ph[i] = w.arg(v)
	}
	return "(" + strings.Join(ph, ", ") + ")"
}

func (w *sqlWhere) and(cond string) { w.conds = append(w.conds, cond) }

func (w *sqlWhere) String() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

// List returns a page of the deliveries in scope that match q, newest first, and the cursor
// of the next page (nil on the last page). The caller has checked q.SurveyID against scope.
func (s *Store) List(ctx context.Context, scope Scope, q ListQuery) ([]*Delivery, *Cursor, error) {
	if !scope.All && len(scope.Surveys) == 0 {
		return []*Delivery{}, nil, nil
	}
	limit := q.Limit
	if limit <= 0 || limit > MaxLimit {
		limit = DefaultLimit
	}
	var w sqlWhere
	if q.SurveyID != "" {
		w.and("d.survey_id = " + w.arg(q.SurveyID))
	} else if !scope.All {
		w.and("d.survey_id IN " + w.in(scope.Surveys))
	}
	if q.WebhookID != "" {
		w.and("d.webhook_id = " + w.arg(q.WebhookID))
	}
	if len(q.Status) > 0 {
		w.and("d.status IN " + w.in(q.Status))
	}
	if q.Type != "" {
		w.and("d.type = " + w.arg(q.Type))
	}
	if !q.Since.IsZero() {
		w.and("d.created_at >= " + w.arg(store.Micros(q.Since)))
	}
	// Only the tighter of until and the cursor bounds the scan from above, so that a planner
	// without statistics (SQLite's) takes the keyset for the index range.
	keyset := q.After != nil
	if !q.Until.IsZero() {
		until := store.Micros(q.Until)
		if keyset && q.After.CreatedAt >= until {
			keyset = false // every delivery before until comes before the cursor
		}
		if !keyset {
			w.and("d.created_at < " + w.arg(until))
		}
	}
	if keyset {
		w.and("(d.created_at, d.id) < (" + w.arg(q.After.CreatedAt) + ", " + w.arg(q.After.ID) + ")")
	}
	query := "SELECT " + deliveryColumns + " FROM deliveries d" + w.String() +
		" ORDER BY d.created_at DESC, d.id DESC LIMIT " + strconv.Itoa(limit+1)
	rows, err := s.db.Query(ctx, query, w.args...)
	if err != nil {
		return nil, nil, fmt.Errorf("listing deliveries: %w", err)
	}
	defer rows.Close()
	out := make([]*Delivery, 0, min(limit+1, 64))
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, nil, fmt.Errorf("listing deliveries: %w", err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("listing deliveries: %w", err)
	}
	if len(out) <= limit {
		return out, nil, nil
	}
	out = out[:limit]
	last := out[limit-1]
	return out, &Cursor{CreatedAt: store.Micros(last.CreatedAt), ID: last.ID}, nil
}

// Get returns the delivery id if scope covers its survey; store.ErrNotFound otherwise.
func (s *Store) Get(ctx context.Context, scope Scope, id string) (*Delivery, error) {
	d, err := scanDelivery(s.db.QueryRow(ctx, "SELECT "+deliveryColumns+" FROM deliveries d WHERE d.id = $1", id))
	if err != nil {
		return nil, fmt.Errorf("getting delivery: %w", err)
	}
	if !scope.Allows(d.SurveyID) {
		return nil, fmt.Errorf("getting delivery: %w", store.ErrNotFound)
	}
	return d, nil
}

// Attempts returns the attempt log of a delivery, in order.
func (s *Store) Attempts(ctx context.Context, deliveryID string) ([]Attempt, error) {
	rows, err := s.db.Query(ctx, `SELECT n, started_at, duration_ms, status_code, error, response_body
		FROM delivery_attempts WHERE delivery_id = $1 ORDER BY n`, deliveryID)
	if err != nil {
		return nil, fmt.Errorf("reading attempts: %w", err)
	}
	defer rows.Close()
	out := []Attempt{}
	for rows.Next() {
		var (
			a       Attempt
			started int64
			code    *int64
		)
		if err := rows.Scan(&a.N, &started, &a.DurationMS, &code, &a.Error, &a.ResponseBody); err != nil {
			return nil, fmt.Errorf("reading attempts: %w", err)
		}
		a.StartedAt = store.FromMicros(started)
		if code != nil {
			c := int(*code)
			a.StatusCode = &c
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading attempts: %w", err)
	}
	return out, nil
}

// ReplayOne enqueues d again to its endpoint as a new pending delivery (replay_of d.ID) due
// at now, to the endpoint's current URL, and returns the new delivery. It fails with
// ErrEndpointDeleted or ErrEndpointDisabled.
func (s *Store) ReplayOne(ctx context.Context, d *Delivery, now time.Time) (*Delivery, error) {
	nd := *d
	nd.ID = NewID()
	nd.Status = StatusPending
	nd.Attempts = 0
	nd.LastStatusCode = nil
	nd.LastError = ""
	nd.ReplayOf = d.ID
	nd.ReplayID = ""
	now = store.FromMicros(store.Micros(now))
	nd.NextAttemptAt = &now
	nd.CreatedAt, nd.UpdatedAt = now, now
	err := s.db.InTx(ctx, func(tx store.Querier) error {
		var disabled bool
		err := tx.QueryRow(ctx, "SELECT url, disabled FROM webhooks WHERE id = $1", d.WebhookID).Scan(&nd.URL, &disabled)
		if errors.Is(err, store.ErrNotFound) {
			return ErrEndpointDeleted
		}
		if err != nil {
			return fmt.Errorf("replaying delivery: %w", err)
		}
		if disabled {
			return ErrEndpointDisabled
		}
		us := store.Micros(now)
		_, err = tx.Exec(ctx, `INSERT INTO deliveries (id, event_id, webhook_id, survey_id, type, url, status, attempts,
			last_error, next_attempt_at, replay_of, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, 'pending', 0, '', $7, $8, $7, $7)`,
			nd.ID, nd.EventID, nd.WebhookID, nd.SurveyID, nd.Type, nd.URL, us, nd.ReplayOf)
		if err != nil {
			return fmt.Errorf("replaying delivery: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &nd, nil
}

// WebhookSurvey returns the survey of the webhook id; store.ErrNotFound when there is none.
func (s *Store) WebhookSurvey(ctx context.Context, id string) (string, error) {
	var surveyID string
	if err := s.db.QueryRow(ctx, "SELECT survey_id FROM webhooks WHERE id = $1", id).Scan(&surveyID); err != nil {
		return "", fmt.Errorf("looking up webhook: %w", err)
	}
	return surveyID, nil
}
