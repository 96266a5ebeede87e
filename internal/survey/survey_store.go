package survey

import (
	"context"
	"fmt"
	"time"

	"github.com/dispatch24/dispatch24/internal/secret"
	"github.com/dispatch24/dispatch24/internal/store"
)

// Store is the survey package's side of the store: the Surveys family of the store's driver
// (surveys and respondents tables), and the revocation of respondents' refresh tokens that
// goes with disabling or deleting them. Survey jwtSecrets are sealed with keys as they are
// written, and opened only by SurveyWithSecret and JWTSecret: the reads that show a survey need
// only know whether one is set, so a value that does not open (damaged, or sealed with a key
// the keyring lacks) fails the operations that use the secret and no others.
type Store struct {
	drv  store.Driver
	keys *secret.Keyring
}

// NewStore returns the survey queries over db, sealing jwtSecrets with keys.
func NewStore(db *store.DB, keys *secret.Keyring) *Store { return &Store{drv: db.Driver, keys: keys} }

// fromStored returns the survey of a stored row, its jwtSecret only as JWTSecretSet.
func fromStored(r *store.Survey) Survey {
	return Survey{
		ID:                 r.ID,
		Name:               r.Name,
		AllowGenUsers:      r.AllowGenUsers,
		JWTSecretSet:       r.JWTSecret != "",
		RedirectURL:        r.RedirectURL,
		RedirectIdentifier: r.RedirectIdentifier,
		AuthURLTokenLength: r.AuthURLTokenLength,
		CreatedAt:          r.CreatedAt,
		UpdatedAt:          r.UpdatedAt,
	}
}

// toStored returns the row that stores s with the stored (sealed) jwtSecret given.
func toStored(s *Survey, sealedJWTSecret string) store.Survey {
	return store.Survey{
		ID:                 s.ID,
		Name:               s.Name,
		AllowGenUsers:      s.AllowGenUsers,
		JWTSecret:          sealedJWTSecret,
		RedirectURL:        s.RedirectURL,
		RedirectIdentifier: s.RedirectIdentifier,
		AuthURLTokenLength: s.AuthURLTokenLength,
		CreatedAt:          s.CreatedAt,
		UpdatedAt:          s.UpdatedAt,
	}
}

// sealedJWTSecret is what surveys.jwt_secret stores for s: its jwtSecret sealed, or "" (NULL).
func (st *Store) sealedJWTSecret(s *Survey) string {
	return st.keys.Seal(secret.SurveyJWTSecret(s.ID), s.JWTSecret)
}

// Survey returns one survey, its jwtSecret only as JWTSecretSet; store.ErrNotFound when it
// does not exist.
func (st *Store) Survey(ctx context.Context, id string) (Survey, error) {
	r, err := st.drv.Surveys().Survey(ctx, id)
	if err != nil {
		return Survey{}, err
	}
	return fromStored(&r), nil
}

// SurveyWithSecret returns one survey with its jwtSecret opened; store.ErrNotFound when it
// does not exist, and the keyring's error (secret.ErrNotOpened, secret.ErrUnknownKey, …)
// when the stored secret does not open.
func (st *Store) SurveyWithSecret(ctx context.Context, id string) (Survey, error) {
	r, err := st.drv.Surveys().Survey(ctx, id)
	if err != nil {
		return Survey{}, err
	}
	s := fromStored(&r)
	if r.JWTSecret != "" {
		if s.JWTSecret, err = st.keys.Open(secret.SurveyJWTSecret(s.ID), r.JWTSecret); err != nil {
			return Survey{}, fmt.Errorf("opening the jwtSecret of survey %s: %w", id, err)
		}
	}
	return s, nil
}

// JWTSecret returns a survey's jwtSecret opened, "" when none is set; store.ErrNotFound when
// the survey does not exist, and the keyring's error when the stored secret does not open.
// It reads only the secret, for packages that sign or verify with it (test sends).
func (st *Store) JWTSecret(ctx context.Context, surveyID string) (string, error) {
	stored, err := st.drv.Surveys().SealedJWTSecret(ctx, surveyID)
	if err != nil || stored == "" {
		return "", err
	}
	return st.keys.Open(secret.SurveyJWTSecret(surveyID), stored)
}

// Surveys lists surveys by id, their jwtSecrets only as JWTSecretSet: every survey when all
// is true, otherwise those in ids.
func (st *Store) Surveys(ctx context.Context, all bool, ids []string) ([]Survey, error) {
	var (
		rows []store.Survey
		err  error
	)
	if all {
		rows, err = st.drv.Surveys().AllSurveys(ctx)
	} else {
		rows, err = st.drv.Surveys().SurveysByID(ctx, ids)
	}
	if err != nil {
		return nil, err
	}
	out := make([]Survey, len(rows))
	for i := range rows {
		out[i] = fromStored(&rows[i])
	}
	return out, nil
}

// MissingSurveys returns the ids among ids that name no survey, in the order given.
func (st *Store) MissingSurveys(ctx context.Context, ids []string) ([]string, error) {
	return st.drv.Surveys().MissingSurveys(ctx, ids)
}

// CreateSurvey inserts s; store.ErrConflict when the id is taken.
func (st *Store) CreateSurvey(ctx context.Context, s Survey) error {
	return st.drv.Surveys().CreateSurvey(ctx, toStored(&s, st.sealedJWTSecret(&s)))
}

// UpdateSurvey reads survey id (its jwtSecret only as JWTSecretSet), lets fn change it and
// writes it back, in one transaction that locks the row, so concurrent PATCHes of different
// fields do not undo each other. The stored jwtSecret is kept as it is unless fn sets a new
// JWTSecret or clears JWTSecretSet. fn's error is returned as it is.
func (st *Store) UpdateSurvey(ctx context.Context, id string, now time.Time, fn func(s *Survey) error) (Survey, error) {
	var out Survey
	err := st.drv.InTx(ctx, func(tx store.Executor) error {
		r, err := tx.Surveys().SurveyForUpdate(ctx, id)
		if err != nil {
			return err
		}
		s := fromStored(&r)
		if err := fn(&s); err != nil {
			return err
		}
		var jwtSecret string // NULL unless a secret is set or kept
		switch {
		case s.JWTSecret != "":
			jwtSecret = st.sealedJWTSecret(&s)
		case s.JWTSecretSet:
			jwtSecret = r.JWTSecret // kept as stored, never opened
		}
		s.JWTSecretSet = jwtSecret != ""
		s.UpdatedAt = now
		if err := tx.Surveys().UpdateSurvey(ctx, toStored(&s, jwtSecret)); err != nil {
			return err
		}
		out = s
		return nil
	})
	return out, err
}

// DeleteSurvey deletes a survey with everything recorded about it, in one transaction: its
// respondents (their refresh tokens revoked), sessions, submissions, webhooks, events,
// deliveries and attempt logs. Nothing with its id remains, so a survey created again with
// the same id starts empty. store.ErrNotFound when it does not exist.
//
// The survey's row is locked first: an intake transaction of the survey either committed
// before (and its submissions and events are deleted here) or waits for this one and then
// finds the survey gone.
func (st *Store) DeleteSurvey(ctx context.Context, id string, now time.Time) error {
	return st.drv.InTx(ctx, func(tx store.Executor) error {
		sv, err := tx.Surveys().SurveyForUpdate(ctx, id)
		if err != nil {
			return err
		}
		if err := tx.Accounts().RevokeSurveyRefreshTokens(ctx, id, now); err != nil {
			return err
		}
		// Sessions before events: a session's change that committed meanwhile has its event
		// committed too, and the events' DELETE, a later statement, sees it.
		if _, err := tx.Submissions().DeleteSurvey(ctx, id); err != nil {
			return err
		}
		if _, err := tx.Events().DeleteSurvey(ctx, id); err != nil {
			return err
		}
		// The tombstone (covering the survey's lifetime) keeps a dispatcher's attempt that is
		// in flight from recording its delivery again, and lets a replay of a deleted
		// delivery be answered as purged.
		if _, err := tx.Deliveries().DeleteSurvey(ctx, id, sv.CreatedAt, now); err != nil {
			return err
		}
		return tx.Surveys().DeleteSurvey(ctx, id)
	})
}
