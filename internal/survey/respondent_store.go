package survey

import (
	"context"
	"time"

	"github.com/dispatch24/dispatch24/internal/store"
)

// Respondent returns a survey's respondent by username; store.ErrNotFound when absent.
func (st *Store) Respondent(ctx context.Context, surveyID, username string) (Respondent, error) {
	return st.drv.Surveys().Respondent(ctx, surveyID, username)
}

// RespondentByAuthToken returns the respondent whose URL authentication token is token;
// store.ErrNotFound when none has it.
func (st *Store) RespondentByAuthToken(ctx context.Context, token string) (Respondent, error) {
	return st.drv.Surveys().RespondentByAuthToken(ctx, token)
}

// SwapPasswordHash replaces a respondent's password hash by next if it still is old (a
// sign-in's or an upgrade's rehash), and reports whether it did.
func (st *Store) SwapPasswordHash(ctx context.Context, id, old, next string) (bool, error) {
	return st.drv.Surveys().SwapPasswordHash(ctx, id, old, next)
}

// CreateRespondent inserts r; store.ErrConflict when the username (or, with negligible
// probability, the auth token) is taken.
func (st *Store) CreateRespondent(ctx context.Context, r *Respondent) error {
	return st.drv.Surveys().CreateRespondent(ctx, *r)
}

// Cursor is a position in a survey's respondent list: the last row of the previous page.
type Cursor = store.RespondentCursor

// Respondents returns up to limit respondents of a survey after the cursor (nil: from the
// start), in (created_at, id) order.
func (st *Store) Respondents(ctx context.Context, surveyID string, after *Cursor, limit int) ([]Respondent, error) {
	return st.drv.Surveys().Respondents(ctx, surveyID, after, limit)
}

// UpdateRespondent reads a respondent, lets fn change it and writes it back in one
// transaction. A respondent left disabled, or whose password fn set or removed, has its
// refresh tokens revoked in the same transaction. fn's error is returned as it is.
func (st *Store) UpdateRespondent(ctx context.Context, surveyID, username string, now time.Time, fn func(r *Respondent) error) (Respondent, error) {
	var out Respondent
	err := st.drv.InTx(ctx, func(tx store.Executor) error {
		r, err := tx.Surveys().RespondentForUpdate(ctx, surveyID, username)
		if err != nil {
			return err
		}
		oldHash := r.PasswordHash
		if err := fn(&r); err != nil {
			return err
		}
		r.UpdatedAt = now
		if err := tx.Surveys().UpdateRespondent(ctx, r); err != nil {
			return err
		}
		if r.Disabled || r.PasswordHash != oldHash {
			if err := tx.Accounts().RevokeRefreshTokensOf(ctx, []string{r.ID}, now); err != nil {
				return err
			}
		}
		out = r
		return nil
	})
	return out, err
}

// DeleteRespondent deletes a respondent, in one transaction with its refresh tokens'
// revocation, its submissions and sessions, and the erasure of its events' payloads (the
// events keep their rows, with store.ErasedPayload, for their deliveries' log);
// store.ErrNotFound when absent.
func (st *Store) DeleteRespondent(ctx context.Context, surveyID, username string, now time.Time) error {
	return st.drv.InTx(ctx, func(tx store.Executor) error {
		id, err := tx.Surveys().DeleteRespondent(ctx, surveyID, username)
		if err != nil {
			return err
		}
		if err := tx.Accounts().RevokeRefreshTokensOf(ctx, []string{id}, now); err != nil {
			return err
		}
		if _, err := tx.Submissions().DeleteRespondent(ctx, surveyID, id); err != nil {
			return err
		}
		_, err = tx.Events().EraseUser(ctx, id, now)
		return err
	})
}

// setRespondentProfile updates the name and custom fields of an existing respondent (the
// create-user path, which never changes the password).
func (st *Store) setRespondentProfile(ctx context.Context, r *Respondent, now time.Time) error {
	if err := st.drv.Surveys().SetRespondentProfile(ctx, r.ID, r.Name, r.CustomFields, now); err != nil {
		return err
	}
	r.UpdatedAt = now
	return nil
}
