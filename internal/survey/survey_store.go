package survey

import (
	"context"
	"fmt"
	"time"

	"github.com/dispatch24/dispatch24/internal/secret"
	"github.com/dispatch24/dispatch24/internal/store"
)

// Store holds the queries of the surveys and respondents tables (and the one statement that
// revokes a respondent's refresh tokens). Survey jwtSecrets are sealed with keys as they are
// written, and opened only by SurveyWithSecret: the reads that show a survey need only know
// whether one is set, so a value that does not open (damaged, or sealed with a key the keyring
// lacks) fails the operations that use the secret and no others.
type Store struct {
	db   *store.DB
	keys *secret.Keyring
}

// NewStore returns the survey queries over db, sealing jwtSecrets with keys.
func NewStore(db *store.DB, keys *secret.Keyring) *Store { return &Store{db: db, keys: keys} }

const surveyColumns = `id, name, allow_gen_users, jwt_secret, redirect_url, redirect_identifier,
	auth_url_token_length, created_at, updated_at`

// scanSurvey reads a survey row, its jwtSecret only as JWTSecretSet, and returns the stored
// (sealed) jwtSecret beside it: nil when none is set.
func (st *Store) scanSurvey(row store.Row) (Survey, *string, error) {
	var (
		s                Survey
		stored           *string
		created, updated int64
	)
	if err := row.Scan(&s.ID, &s.Name, &s.AllowGenUsers, &stored, &s.RedirectURL, &s.RedirectIdentifier,
		&s.AuthURLTokenLength, &created, &updated); err != nil {
		return Survey{}, nil, err
	}
	s.JWTSecretSet = stored != nil
	s.CreatedAt, s.UpdatedAt = store.FromMicros(created), store.FromMicros(updated)
	return s, stored, nil
}

// sealedJWTSecret is what surveys.jwt_secret stores for s: its jwtSecret sealed, or NULL.
func (st *Store) sealedJWTSecret(s *Survey) any {
	return nullString(st.keys.Seal(secret.SurveyJWTSecret(s.ID), s.JWTSecret))
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// forUpdate locks the rows a read-modify-write transaction reads on PostgreSQL; SQLite's
// single writer already serialises such transactions.
func forUpdate(d store.Dialect) string {
	if d == store.Postgres {
		return " FOR UPDATE"
	}
	return ""
}

// Survey returns one survey, its jwtSecret only as JWTSecretSet; store.ErrNotFound when it
// does not exist.
func (st *Store) Survey(ctx context.Context, id string) (Survey, error) {
	s, _, err := st.scanSurvey(st.db.QueryRow(ctx, `SELECT `+surveyColumns+` FROM surveys WHERE id = $1`, id))
	if err != nil {
		return Survey{}, fmt.Errorf("reading survey %s: %w", id, err)
	}
	return s, nil
}

// SurveyWithSecret returns one survey with its jwtSecret opened; store.ErrNotFound when it
// does not exist, and the keyring's error (secret.ErrNotOpened, secret.ErrUnknownKey, …)
// when the stored secret does not open.
func (st *Store) SurveyWithSecret(ctx context.Context, id string) (Survey, error) {
	s, stored, err := st.scanSurvey(st.db.QueryRow(ctx, `SELECT `+surveyColumns+` FROM surveys WHERE id = $1`, id))
	if err != nil {
		return Survey{}, fmt.Errorf("reading survey %s: %w", id, err)
	}
	if stored != nil {
		if s.JWTSecret, err = st.keys.Open(secret.SurveyJWTSecret(s.ID), *stored); err != nil {
			return Survey{}, fmt.Errorf("opening the jwtSecret of survey %s: %w", id, err)
		}
	}
	return s, nil
}

// Surveys lists surveys by id, their jwtSecrets only as JWTSecretSet: every survey when all
// is true, otherwise those in ids.
func (st *Store) Surveys(ctx context.Context, all bool, ids []string) ([]Survey, error) {
	q := `SELECT ` + surveyColumns + ` FROM surveys`
	var args []any
	if !all {
		if len(ids) == 0 {
			return []Survey{}, nil
		}
		q += ` WHERE id IN ` + store.Placeholders(1, len(ids), 1)
		for _, id := range ids {
			args = append(args, id)
		}
	}
	rows, err := st.db.Query(ctx, q+` ORDER BY id`, args...)
	if err != nil {
		return nil, fmt.Errorf("listing surveys: %w", err)
	}
	defer rows.Close()
	out := []Survey{}
	for rows.Next() {
		s, _, err := st.scanSurvey(rows)
		if err != nil {
			return nil, fmt.Errorf("listing surveys: %w", err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing surveys: %w", err)
	}
	return out, nil
}

// CreateSurvey inserts s; store.ErrConflict when the id is taken.
func (st *Store) CreateSurvey(ctx context.Context, s Survey) error {
	_, err := st.db.Exec(ctx, `INSERT INTO surveys (`+surveyColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		s.ID, s.Name, s.AllowGenUsers, st.sealedJWTSecret(&s), s.RedirectURL, s.RedirectIdentifier,
		s.AuthURLTokenLength, store.Micros(s.CreatedAt), store.Micros(s.UpdatedAt))
	if err != nil {
		return fmt.Errorf("creating survey %s: %w", s.ID, err)
	}
	return nil
}

// UpdateSurvey reads survey id (its jwtSecret only as JWTSecretSet), lets fn change it and
// writes it back, in one transaction that locks the row, so concurrent PATCHes of different
// fields do not undo each other. The stored jwtSecret is kept as it is unless fn sets a new
// JWTSecret or clears JWTSecretSet. fn's error is returned as it is.
func (st *Store) UpdateSurvey(ctx context.Context, id string, now time.Time, fn func(s *Survey) error) (Survey, error) {
	var out Survey
	err := st.db.InTx(ctx, func(tx store.Querier) error {
		s, stored, err := st.scanSurvey(tx.QueryRow(ctx, `SELECT `+surveyColumns+` FROM surveys WHERE id = $1`+forUpdate(st.db.Dialect), id))
		if err != nil {
			return fmt.Errorf("reading survey %s: %w", id, err)
		}
		if err := fn(&s); err != nil {
			return err
		}
		var jwtSecret any // NULL unless a secret is set or kept
		switch {
		case s.JWTSecret != "":
			jwtSecret = st.sealedJWTSecret(&s)
		case s.JWTSecretSet && stored != nil:
			jwtSecret = *stored // kept as stored, never opened
		}
		s.JWTSecretSet = jwtSecret != nil
		s.UpdatedAt = now
		if _, err := tx.Exec(ctx, `UPDATE surveys SET name = $2, allow_gen_users = $3, jwt_secret = $4,
			redirect_url = $5, redirect_identifier = $6, auth_url_token_length = $7, updated_at = $8
			WHERE id = $1`,
			s.ID, s.Name, s.AllowGenUsers, jwtSecret, s.RedirectURL, s.RedirectIdentifier,
			s.AuthURLTokenLength, store.Micros(s.UpdatedAt)); err != nil {
			return fmt.Errorf("updating survey %s: %w", id, err)
		}
		out = s
		return nil
	})
	return out, err
}

// DeleteSurvey deletes a survey (the schema cascades to its respondents, sessions,
// submissions and webhooks) after revoking its respondents' refresh tokens, in one
// transaction; store.ErrNotFound when it does not exist.
func (st *Store) DeleteSurvey(ctx context.Context, id string, now time.Time) error {
	return st.db.InTx(ctx, func(tx store.Querier) error {
		if _, err := tx.Exec(ctx, `UPDATE refresh_tokens SET revoked_at = $1
			WHERE revoked_at IS NULL AND user_id IN (SELECT id FROM respondents WHERE survey_id = $2)`,
			store.Micros(now), id); err != nil {
			return fmt.Errorf("revoking refresh tokens of survey %s: %w", id, err)
		}
		n, err := tx.Exec(ctx, `DELETE FROM surveys WHERE id = $1`, id)
		if err != nil {
			return fmt.Errorf("deleting survey %s: %w", id, err)
		}
		if n == 0 {
			return fmt.Errorf("deleting survey %s: %w", id, store.ErrNotFound)
		}
		return nil
	})
}
