package sqlcommon

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/dispatch24/dispatch24/internal/store"
)

// InsertRefreshToken implements store.Accounts.
func (a Accounts) InsertRefreshToken(ctx context.Context, t store.RefreshToken) error {
	_, err := a.Write.Exec(ctx, `INSERT INTO refresh_tokens (jti, user_id, user_kind, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)`,
		t.JTI, t.UserID, t.Kind, store.Micros(t.CreatedAt), store.Micros(t.ExpiresAt))
	if err != nil {
		return fmt.Errorf("recording refresh token: %w", err)
	}
	return nil
}

// RefreshToken implements store.Accounts.
func (a Accounts) RefreshToken(ctx context.Context, jti string) (store.RefreshTokenState, error) {
	var (
		r                  store.RefreshTokenState
		created, expires   int64
		revokedAt          *int64
		uRoles             *string
		uDisabled          *bool
		rSurvey, rUsername *string
		rDisabled          *bool
	)
	err := a.Read.QueryRow(ctx, `SELECT rt.user_id, rt.user_kind, rt.created_at, rt.expires_at, rt.revoked_at,
			u.roles, u.disabled, r.survey_id, r.username, r.disabled
		FROM refresh_tokens rt
		LEFT JOIN users u ON rt.user_kind = 'global' AND u.id = rt.user_id
		LEFT JOIN respondents r ON rt.user_kind = 'respondent' AND r.id = rt.user_id
		WHERE rt.jti = $1`, jti).
		Scan(&r.UserID, &r.Kind, &created, &expires, &revokedAt, &uRoles, &uDisabled, &rSurvey, &rUsername, &rDisabled)
	if err != nil {
		return store.RefreshTokenState{}, fmt.Errorf("reading refresh token: %w", err)
	}
	r.JTI = jti
	r.CreatedAt, r.ExpiresAt, r.RevokedAt = store.FromMicros(created), store.FromMicros(expires), store.NullMicros(revokedAt)
	switch r.Kind {
	case store.AccountGlobal:
		if uDisabled != nil {
			r.Exists, r.Disabled, r.Roles = true, *uDisabled, splitRoles(accountsDeref(uRoles))
		}
	case store.AccountRespondent:
		if rDisabled != nil {
			r.Exists, r.Disabled, r.SurveyID, r.Username = true, *rDisabled, accountsDeref(rSurvey), accountsDeref(rUsername)
		}
	}
	return r, nil
}

func accountsDeref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// RevokeRefreshToken implements store.Accounts.
func (a Accounts) RevokeRefreshToken(ctx context.Context, jti, userID string, now time.Time) (bool, error) {
	n, err := a.Write.Exec(ctx, `UPDATE refresh_tokens SET revoked_at = $3 WHERE jti = $1 AND user_id = $2 AND revoked_at IS NULL`,
		jti, userID, store.Micros(now))
	if err != nil {
		return false, fmt.Errorf("revoking refresh token: %w", err)
	}
	return n > 0, nil
}

// RevokeUserRefreshTokens implements store.Accounts.
func (a Accounts) RevokeUserRefreshTokens(ctx context.Context, userID string, now time.Time) error {
	_, err := a.Write.Exec(ctx, `UPDATE refresh_tokens SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL`,
		userID, store.Micros(now))
	if err != nil {
		return fmt.Errorf("revoking refresh tokens of %s: %w", userID, err)
	}
	return nil
}

// RevokeRefreshTokensOf implements store.Accounts.
func (a Accounts) RevokeRefreshTokensOf(ctx context.Context, userIDs []string, now time.Time) error {
	for part := range slices.Chunk(userIDs, accountsChunk) {
		args := make([]any, 0, len(part)+1)
		args = append(args, store.Micros(now))
		for _, id := range part {
			args = append(args, id)
		}
		if _, err := a.Write.Exec(ctx, `UPDATE refresh_tokens SET revoked_at = $1 WHERE revoked_at IS NULL AND user_id IN `+
			store.Placeholders(1, len(part), 2), args...); err != nil {
			return fmt.Errorf("revoking refresh tokens: %w", err)
		}
	}
	return nil
}

// RevokeSurveyRefreshTokens implements store.Accounts.
func (a Accounts) RevokeSurveyRefreshTokens(ctx context.Context, surveyID string, now time.Time) error {
	if _, err := a.Write.Exec(ctx, `UPDATE refresh_tokens SET revoked_at = $1
		WHERE revoked_at IS NULL AND user_id IN (SELECT id FROM respondents WHERE survey_id = $2)`,
		store.Micros(now), surveyID); err != nil {
		return fmt.Errorf("revoking refresh tokens of survey %s: %w", surveyID, err)
	}
	return nil
}

// PruneRefreshTokens implements store.Accounts.
func (a Accounts) PruneRefreshTokens(ctx context.Context, before time.Time) (int64, error) {
	n, err := a.Write.Exec(ctx, "DELETE FROM refresh_tokens WHERE expires_at <= $1", store.Micros(before))
	if err != nil {
		return 0, fmt.Errorf("pruning refresh tokens: %w", err)
	}
	return n, nil
}

// InsertPersonalAccessToken implements store.Accounts.
func (a Accounts) InsertPersonalAccessToken(ctx context.Context, p store.PersonalAccessToken) error {
	_, err := a.Write.Exec(ctx, `INSERT INTO personal_access_tokens (id, user_id, name, token_hash, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6)`, p.ID, p.UserID, p.Name, p.Hash, store.Micros(p.CreatedAt), store.Micros(p.ExpiresAt))
	if err != nil {
		return fmt.Errorf("inserting personal access token: %w", err)
	}
	return nil
}

// PersonalAccessTokens implements store.Accounts.
func (a Accounts) PersonalAccessTokens(ctx context.Context, userID string) ([]store.PersonalAccessToken, error) {
	rows, err := a.Read.Query(ctx, `SELECT id, name, expires_at, created_at, last_used_at FROM personal_access_tokens
		WHERE user_id = $1 ORDER BY created_at, id`, userID)
	if err != nil {
		return nil, fmt.Errorf("listing personal access tokens: %w", err)
	}
	defer rows.Close()
	out := []store.PersonalAccessToken{}
	for rows.Next() {
		var (
			p                store.PersonalAccessToken
			expires, created int64
			used             *int64
		)
		if err := rows.Scan(&p.ID, &p.Name, &expires, &created, &used); err != nil {
			return nil, fmt.Errorf("listing personal access tokens: %w", err)
		}
		p.UserID = userID
		p.ExpiresAt, p.CreatedAt, p.LastUsedAt = store.FromMicros(expires), store.FromMicros(created), store.NullMicros(used)
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing personal access tokens: %w", err)
	}
	return out, nil
}

// PersonalAccessTokenByHash implements store.Accounts.
func (a Accounts) PersonalAccessTokenByHash(ctx context.Context, hash string) (store.PersonalAccessTokenOwner, error) {
	var (
		p                store.PersonalAccessTokenOwner
		created, expires int64
		used             *int64
		roles            string
	)
	err := a.Read.QueryRow(ctx, `SELECT p.id, p.user_id, p.name, p.token_hash, p.created_at, p.expires_at, p.last_used_at,
			u.email, u.roles, u.disabled
		FROM personal_access_tokens p JOIN users u ON u.id = p.user_id
		WHERE p.token_hash = $1`, hash).
		Scan(&p.ID, &p.UserID, &p.Name, &p.Hash, &created, &expires, &used, &p.Email, &roles, &p.Disabled)
	if err != nil {
		return store.PersonalAccessTokenOwner{}, fmt.Errorf("reading personal access token: %w", err)
	}
	p.CreatedAt, p.ExpiresAt, p.LastUsedAt = store.FromMicros(created), store.FromMicros(expires), store.NullMicros(used)
	p.Roles = splitRoles(roles)
	return p, nil
}

// TouchPersonalAccessToken implements store.Accounts.
func (a Accounts) TouchPersonalAccessToken(ctx context.Context, id string, now, staleBefore time.Time) error {
	_, err := a.Write.Exec(ctx, `UPDATE personal_access_tokens SET last_used_at = $2
		WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $3)`, id, store.Micros(now), store.Micros(staleBefore))
	if err != nil {
		return fmt.Errorf("recording use of personal access token: %w", err)
	}
	return nil
}

// DeletePersonalAccessToken implements store.Accounts.
func (a Accounts) DeletePersonalAccessToken(ctx context.Context, userID, id string) error {
	n, err := a.Write.Exec(ctx, "DELETE FROM personal_access_tokens WHERE id = $1 AND user_id = $2", id, userID)
	if err != nil {
		return fmt.Errorf("deleting personal access token: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("deleting personal access token: %w", store.ErrNotFound)
	}
	return nil
}

// DeleteUserPersonalAccessTokens implements store.Accounts.
func (a Accounts) DeleteUserPersonalAccessTokens(ctx context.Context, userID string) error {
	if _, err := a.Write.Exec(ctx, `DELETE FROM personal_access_tokens WHERE user_id = $1`, userID); err != nil {
		return fmt.Errorf("deleting personal access tokens: %w", err)
	}
	return nil
}
