package survey

import (
	"context"
	"fmt"
	"time"

	"github.com/dispatch24/dispatch24/internal/store"
)

const respondentColumns = `id, survey_id, username, name, password_hash, auth_token, custom_fields,
	disabled, created_at, updated_at`

func scanRespondent(row store.Row) (Respondent, error) {
	var (
		r                Respondent
		hash             *string
		fields           []byte
		created, updated int64
	)
	if err := row.Scan(&r.ID, &r.SurveyID, &r.Username, &r.Name, &hash, &r.AuthToken, &fields,
		&r.Disabled, &created, &updated); err != nil {
		return Respondent{}, err
	}
	if hash != nil {
		r.PasswordHash = *hash
	}
	cf, err := decodeCustomFields(fields)
	if err != nil {
		return Respondent{}, fmt.Errorf("respondent %s: %w", r.ID, err)
	}
	r.CustomFields = cf
	r.CreatedAt, r.UpdatedAt = store.FromMicros(created), store.FromMicros(updated)
	return r, nil
}

// jsonArg binds a JSON document: bytes for PostgreSQL's jsonb, text for SQLite, where bytes
// would be stored as a BLOB that SQLite's JSON functions do not read as JSON text.
func (st *Store) jsonArg(b []byte) any {
	if st.db.Dialect == store.SQLite {
		return string(b)
	}
	return b
}

func (st *Store) respondentArgs(r *Respondent) []any {
	return []any{r.ID, r.SurveyID, r.Username, r.Name, nullString(r.PasswordHash), r.AuthToken,
		st.jsonArg(encodeCustomFields(r.CustomFields)), r.Disabled, store.Micros(r.CreatedAt), store.Micros(r.UpdatedAt)}
}

// Respondent returns a survey's respondent by username; store.ErrNotFound when absent.
func (st *Store) Respondent(ctx context.Context, surveyID, username string) (Respondent, error) {
	return st.respondent(ctx, st.db, surveyID, username, false)
}

// respondent reads a respondent through q (the pool, a transaction or the writer); lock takes
// a row lock on PostgreSQL for a read-modify-write transaction.
func (st *Store) respondent(ctx context.Context, q store.Querier, surveyID, username string, lock bool) (Respondent, error) {
	sql := `SELECT ` + respondentColumns + ` FROM respondents WHERE survey_id = $1 AND username = $2`
	if lock {
		sql += forUpdate(st.db.Dialect)
	}
	r, err := scanRespondent(q.QueryRow(ctx, sql, surveyID, username))
	if err != nil {
		return Respondent{}, fmt.Errorf("reading respondent: %w", err)
	}
	return r, nil
}

// CreateRespondent inserts r; store.ErrConflict when the username (or, with negligible
// probability, the auth token) is taken.
func (st *Store) CreateRespondent(ctx context.Context, r *Respondent) error {
	_, err := st.db.Exec(ctx, `INSERT INTO respondents (`+respondentColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, st.respondentArgs(r)...)
	if err != nil {
		return fmt.Errorf("creating respondent: %w", err)
	}
	return nil
}

// Cursor is a position in a survey's respondent list: the last row of the previous page.
type Cursor struct {
	CreatedAt int64  // microseconds
	ID        string // tie-breaker among rows created in the same microsecond
}

// Respondents returns up to limit respondents of a survey after the cursor (nil: from the
// start), in (created_at, id) order.
func (st *Store) Respondents(ctx context.Context, surveyID string, after *Cursor, limit int) ([]Respondent, error) {
	q := `SELECT ` + respondentColumns + ` FROM respondents WHERE survey_id = $1`
	args := []any{surveyID}
	if after != nil {
		q += ` AND (created_at > $2 OR (created_at = $2 AND id > $3))`
		args = append(args, after.CreatedAt, after.ID)
	}
	q += fmt.Sprintf(` ORDER BY created_at, id LIMIT $%d`, len(args)+1)
	args = append(args, limit)
	rows, err := st.db.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("listing respondents: %w", err)
	}
	defer rows.Close()
	out := make([]Respondent, 0, min(limit, 1024))
	for rows.Next() {
		r, err := scanRespondent(rows)
		if err != nil {
			return nil, fmt.Errorf("listing respondents: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing respondents: %w", err)
	}
	return out, nil
}

// UpdateRespondent reads a respondent, lets fn change it and writes it back in one
// transaction. A respondent left disabled, or whose password fn set or removed, has its
// refresh tokens revoked in the same transaction. fn's error is returned as it is.
func (st *Store) UpdateRespondent(ctx context.Context, surveyID, username string, now time.Time, fn func(r *Respondent) error) (Respondent, error) {
	var out Respondent
	err := st.db.InTx(ctx, func(tx store.Querier) error {
		r, err := st.respondent(ctx, tx, surveyID, username, true)
		if err != nil {
			return err
		}
		oldHash := r.PasswordHash
		if err := fn(&r); err != nil {
			return err
		}
		r.UpdatedAt = now
		if _, err := tx.Exec(ctx, `UPDATE respondents SET name = $2, password_hash = $3, custom_fields = $4,
			disabled = $5, updated_at = $6 WHERE id = $1`,
			r.ID, r.Name, nullString(r.PasswordHash), st.jsonArg(encodeCustomFields(r.CustomFields)),
			r.Disabled, store.Micros(now)); err != nil {
			return fmt.Errorf("updating respondent: %w", err)
		}
		if r.Disabled || r.PasswordHash != oldHash {
			if err := revokeRefreshTokens(ctx, tx, r.ID, now); err != nil {
				return err
			}
		}
		out = r
		return nil
	})
	return out, err
}

// DeleteRespondent deletes a respondent and revokes its refresh tokens in one transaction;
// store.ErrNotFound when absent.
func (st *Store) DeleteRespondent(ctx context.Context, surveyID, username string, now time.Time) error {
	return st.db.InTx(ctx, func(tx store.Querier) error {
		var id string
		if err := tx.QueryRow(ctx, `DELETE FROM respondents WHERE survey_id = $1 AND username = $2 RETURNING id`,
			surveyID, username).Scan(&id); err != nil {
			return fmt.Errorf("deleting respondent: %w", err)
		}
		return revokeRefreshTokens(ctx, tx, id, now)
	})
}

// revokeRefreshTokens revokes every live refresh token of a user. The refresh_tokens table
// belongs to the auth package; this and revokeRefreshTokensOf are the statements this
// package runs on it, so that disabling or deleting a respondent, or setting its password,
// signs it out everywhere at once.
func revokeRefreshTokens(ctx context.Context, q store.Querier, userID string, now time.Time) error {
	if _, err := q.Exec(ctx, `UPDATE refresh_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL`,
		store.Micros(now), userID); err != nil {
		return fmt.Errorf("revoking refresh tokens: %w", err)
	}
	return nil
}

// revokeRefreshTokensOf revokes the live refresh tokens of several users at once.
func revokeRefreshTokensOf(ctx context.Context, q store.Querier, userIDs []string, now time.Time) error {
	if len(userIDs) == 0 {
		return nil
	}
	args := make([]any, 0, len(userIDs)+1)
	args = append(args, store.Micros(now))
	for _, id := range userIDs {
		args = append(args, id)
	}
	if _, err := q.Exec(ctx, `UPDATE refresh_tokens SET revoked_at = $1 WHERE revoked_at IS NULL AND user_id IN `+
		store.Placeholders(1, len(userIDs), 2), args...); err != nil {
		return fmt.Errorf("revoking refresh tokens: %w", err)
	}
	return nil
}

// setRespondentProfile updates the name and custom fields of an existing respondent (the
// create-user path, which never changes the password).
func (st *Store) setRespondentProfile(ctx context.Context, r *Respondent, now time.Time) error {
	if _, err := st.db.Exec(ctx, `UPDATE respondents SET name = $2, custom_fields = $3, updated_at = $4 WHERE id = $1`,
		r.ID, r.Name, st.jsonArg(encodeCustomFields(r.CustomFields)), store.Micros(now)); err != nil {
		return fmt.Errorf("updating respondent: %w", err)
	}
	r.UpdatedAt = now
	return nil
}
