package auth

import (
	"context"
	"fmt"
	"time"

	"github.com/dispatch24/dispatch24/internal/store"
)

// The user_kind values of refresh_tokens.
const (
	kindGlobal     = "global"
	kindRespondent = "respondent"
)

// insertRefreshToken records an issued refresh token.
func insertRefreshToken(ctx context.Context, q store.Querier, jti, userID, kind string, created, expires time.Time) error {
	_, err := q.Exec(ctx, `INSERT INTO refresh_tokens (jti, user_id, user_kind, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)`,
		jti, userID, kind, store.Micros(created), store.Micros(expires))
	if err != nil {
		return fmt.Errorf("recording refresh token: %w", err)
	}
	return nil
}

// refreshRecord is a refresh token's record joined with the current state of its account.
type refreshRecord struct {
	UserID    string
	Kind      string
	ExpiresAt int64
	Revoked   bool
	// Exists and Disabled describe the account now; Email/Roles for global accounts,
	// SurveyID/Username for respondents.
	Exists   bool
	Disabled bool
	Roles    string
	SurveyID string
	Username string
}

// refreshTokenRecord reads a refresh token's record and its account in one round trip.
func refreshTokenRecord(ctx context.Context, q store.Querier, jti string) (*refreshRecord, error) {
	var (
		r         refreshRecord
		revokedAt *int64
		uRoles    *string
		uDisabled *bool
		rSurvey   *string
		rUsername *string
		rDisabled *bool
	)
	err := q.QueryRow(ctx, `SELECT rt.user_id, rt.user_kind, rt.expires_at, rt.revoked_at,
			u.roles, u.disabled, r.survey_id, r.username, r.disabled
		FROM refresh_tokens rt
		LEFT JOIN users u ON rt.user_kind = 'global' AND u.id = rt.user_id
		LEFT JOIN respondents r ON rt.user_kind = 'respondent' AND r.id = rt.user_id
		WHERE rt.jti = $1`, jti).
		Scan(&r.UserID, &r.Kind, &r.ExpiresAt, &revokedAt, &uRoles, &uDisabled, &rSurvey, &rUsername, &rDisabled)
	if err != nil {
		return nil, fmt.Errorf("reading refresh token: %w", err)
	}
	r.Revoked = revokedAt != nil
	switch r.Kind {
	case kindGlobal:
		if uDisabled != nil {
			r.Exists, r.Disabled, r.Roles = true, *uDisabled, deref(uRoles)
		}
	case kindRespondent:
		if rDisabled != nil {
			r.Exists, r.Disabled, r.SurveyID, r.Username = true, *rDisabled, deref(rSurvey), deref(rUsername)
		}
	}
	return &r, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// revokeRefreshToken revokes one refresh token of userID; false when there was no such live
// token.
func revokeRefreshToken(ctx context.Context, q store.Querier, jti, userID string, now time.Time) (bool, error) {
	n, err := q.Exec(ctx, `UPDATE refresh_tokens SET revoked_at = $3 WHERE jti = $1 AND user_id = $2 AND revoked_at IS NULL`,
		jti, userID, store.Micros(now))
	if err != nil {
		return false, fmt.Errorf("revoking refresh token: %w", err)
	}
	return n > 0, nil
}

// revokeUserRefreshTokens revokes every live refresh token of an account.
func revokeUserRefreshTokens(ctx context.Context, q store.Querier, userID string, now time.Time) error {
	_, err := q.Exec(ctx, `UPDATE refresh_tokens SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL`,
		userID, store.Micros(now))
	if err != nil {
		return fmt.Errorf("revoking refresh tokens of %s: %w", userID, err)
	}
	return nil
}

// PersonalAccessToken is a personal access token as listed; the token itself is shown only
// when it is created.
type PersonalAccessToken struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	ExpiresAt  time.Time  `json:"expiresAt"`
	CreatedAt  time.Time  `json:"createdAt"`
	LastUsedAt *time.Time `json:"lastUsedAt"`
}

func insertPAT(ctx context.Context, q store.Querier, userID, hash string, p *PersonalAccessToken) error {
	_, err := q.Exec(ctx, `INSERT INTO personal_access_tokens (id, user_id, name, token_hash, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, p.ID, userID, p.Name, hash, store.Micros(p.CreatedAt), store.Micros(p.ExpiresAt))
	if err != nil {
		return fmt.Errorf("inserting personal access token: %w", err)
	}
	return nil
}

func listPATs(ctx context.Context, q store.Querier, userID string) ([]PersonalAccessToken, error) {
	rows, err := q.Query(ctx, `SELECT id, name, expires_at, created_at, last_used_at FROM personal_access_tokens
		WHERE user_id = $1 ORDER BY created_at, id`, userID)
	if err != nil {
		return nil, fmt.Errorf("listing personal access tokens: %w", err)
	}
	defer rows.Close()
	out := []PersonalAccessToken{}
	for rows.Next() {
		var (
			p                PersonalAccessToken
			expires, created int64
			used             *int64
		)
		if err := rows.Scan(&p.ID, &p.Name, &expires, &created, &used); err != nil {
			return nil, fmt.Errorf("listing personal access tokens: %w", err)
		}
		p.ExpiresAt, p.CreatedAt = store.FromMicros(expires), store.FromMicros(created)
		if used != nil {
			t := store.FromMicros(*used)
			p.LastUsedAt = &t
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing personal access tokens: %w", err)
	}
	return out, nil
}

// deleteUserPATs deletes every personal access token of a user.
func deleteUserPATs(ctx context.Context, q store.Querier, userID string) error {
	if _, err := q.Exec(ctx, `DELETE FROM personal_access_tokens WHERE user_id = $1`, userID); err != nil {
		return fmt.Errorf("deleting personal access tokens: %w", err)
	}
	return nil
}

func deletePAT(ctx context.Context, q store.Querier, userID, id string) error {
	n, err := q.Exec(ctx, "DELETE FROM personal_access_tokens WHERE id = $1 AND user_id = $2", id, userID)
	if err != nil {
		return fmt.Errorf("deleting personal access token: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("deleting personal access token: %w", store.ErrNotFound)
	}
	return nil
}

// patRecord is a personal access token with its owner's current state.
type patRecord struct {
	ID         string
	Hash       string
	UserID     string
	ExpiresAt  int64
	LastUsedAt *int64
	Email      string
	Roles      string
	Disabled   bool
}

func patByHash(ctx context.Context, q store.Querier, hash string) (*patRecord, error) {
	var p patRecord
	err := q.QueryRow(ctx, `SELECT p.id, p.token_hash, p.user_id, p.expires_at, p.last_used_at, u.email, u.roles, u.disabled
		FROM personal_access_tokens p JOIN users u ON u.id = p.user_id
		WHERE p.token_hash = $1`, hash).
		Scan(&p.ID, &p.Hash, &p.UserID, &p.ExpiresAt, &p.LastUsedAt, &p.Email, &p.Roles, &p.Disabled)
	if err != nil {
		return nil, fmt.Errorf("reading personal access token: %w", err)
	}
	return &p, nil
}

// touchPAT records a use unless one was recorded after staleBefore, so concurrent replicas
// write at most once per interval.
func touchPAT(ctx context.Context, q store.Querier, id string, now, staleBefore time.Time) error {
	_, err := q.Exec(ctx, `UPDATE personal_access_tokens SET last_used_at = $2
		WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $3)`, id, store.Micros(now), store.Micros(staleBefore))
	if err != nil {
		return fmt.Errorf("recording use of personal access token: %w", err)
	}
	return nil
}

// respondentRow is what sign-in needs of a respondent (the table belongs to the survey
// package; auth only reads it).
type respondentRow struct {
	ID           string
	SurveyID     string
	Username     string
	PasswordHash *string
	AuthToken    string
	Disabled     bool
}

const respondentColumns = "id, survey_id, username, password_hash, auth_token, disabled"

func scanRespondent(row store.Row) (*respondentRow, error) {
	var r respondentRow
	if err := row.Scan(&r.ID, &r.SurveyID, &r.Username, &r.PasswordHash, &r.AuthToken, &r.Disabled); err != nil {
		return nil, err
	}
	return &r, nil
}

func respondentByAlias(ctx context.Context, q store.Querier, surveyID, username string) (*respondentRow, error) {
	r, err := scanRespondent(q.QueryRow(ctx, "SELECT "+respondentColumns+" FROM respondents WHERE survey_id = $1 AND username = $2", surveyID, username))
	if err != nil {
		return nil, fmt.Errorf("reading respondent: %w", err)
	}
	return r, nil
}

func respondentByToken(ctx context.Context, q store.Querier, token string) (*respondentRow, error) {
	r, err := scanRespondent(q.QueryRow(ctx, "SELECT "+respondentColumns+" FROM respondents WHERE auth_token = $1", token))
	if err != nil {
		return nil, fmt.Errorf("reading respondent: %w", err)
	}
	return r, nil
}

// prune deletes sign-in failures older than the window and refresh tokens past their expiry.
func prune(ctx context.Context, q store.Querier, failuresBefore, tokensBefore time.Time) (failures, tokens int64, err error) {
	if failures, err = q.Exec(ctx, "DELETE FROM signin_failures WHERE failed_at <= $1", store.Micros(failuresBefore)); err != nil {
		return 0, 0, fmt.Errorf("pruning sign-in failures: %w", err)
	}
	if tokens, err = q.Exec(ctx, "DELETE FROM refresh_tokens WHERE expires_at <= $1", store.Micros(tokensBefore)); err != nil {
		return failures, 0, fmt.Errorf("pruning refresh tokens: %w", err)
	}
	return failures, tokens, nil
}
