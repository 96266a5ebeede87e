package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/dispatch24/dispatch24/internal/httpapi"
	"github.com/dispatch24/dispatch24/internal/store"
)

const maxPATNameLen = 100

// CreatedPAT is a new personal access token with the token itself, shown this once.
type CreatedPAT struct {
	PersonalAccessToken
	Token string `json:"token"`
}

// CreatePAT creates a personal access token for a global account. expiresAt must be in the
// future and at most PATMaxLifetime (two years) ahead.
func (s *Service) CreatePAT(ctx context.Context, userID, name string, expiresAt time.Time) (*CreatedPAT, error) {
	now := s.cfg.NowFunc().UTC()
	var errs []httpapi.FieldError
	name = strings.TrimSpace(name)
	errs = append(errs, required("name", name, maxPATNameLen)...)
	limit := now.AddDate(2, 0, 0)
	if s.cfg.PATMaxLifetime > 0 {
		limit = now.Add(s.cfg.PATMaxLifetime)
	}
	switch {
	case expiresAt.IsZero():
		errs = append(errs, httpapi.FieldError{Field: "expiresAt", Message: "is required (RFC 3339)"})
	case !expiresAt.After(now):
		errs = append(errs, httpapi.FieldError{Field: "expiresAt", Message: "must be in the future"})
	case expiresAt.After(limit.Add(time.Minute)): // a minute of slack for the client's clock
		errs = append(errs, httpapi.FieldError{Field: "expiresAt", Message: "must be at most two years ahead"})
	}
	if len(errs) > 0 {
		return nil, httpapi.Validation(errs...)
	}
	tok := PATPrefix + randomString(32)
	p := &CreatedPAT{
		PersonalAccessToken: PersonalAccessToken{
			ID:        newID("pat_"),
			Name:      name,
			ExpiresAt: expiresAt.UTC().Truncate(time.Microsecond),
			CreatedAt: now.Truncate(time.Microsecond),
		},
		Token: tok,
	}
	rec := store.PersonalAccessToken{
		ID: p.ID, UserID: userID, Name: p.Name, Hash: hashPAT(tok), CreatedAt: p.CreatedAt, ExpiresAt: p.ExpiresAt,
	}
	if err := s.accounts().InsertPersonalAccessToken(ctx, rec); err != nil {
		return nil, err
	}
	s.logger.InfoContext(ctx, "personal access token created", "user_id", userID, "pat_id", p.ID)
	return p, nil
}

type createPATRequest struct {
	Name      string `json:"name"`
	ExpiresAt string `json:"expiresAt"`
}

func (s *Service) handleCreatePAT(w http.ResponseWriter, r *http.Request) error {
	p := httpapi.PrincipalFrom(r.Context())
	if p.PAT {
		// A leaked token must not be able to mint successors that outlive its deletion.
		return httpapi.Forbidden("pat_not_allowed", "personal access tokens cannot create personal access tokens; sign in")
	}
	var req createPATRequest
	if err := httpapi.DecodeJSON(w, r, 0, &req); err != nil {
		return err
	}
	var expires time.Time
	if req.ExpiresAt != "" {
		var err error
		if expires, err = time.Parse(time.RFC3339, req.ExpiresAt); err != nil {
			return httpapi.Validation(httpapi.FieldError{Field: "expiresAt", Message: "must be an RFC 3339 time"})
		}
	}
	created, err := s.CreatePAT(r.Context(), p.UserID, req.Name, expires)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	httpapi.WriteJSON(w, http.StatusCreated, created)
	return nil
}

func (s *Service) handleListPATs(w http.ResponseWriter, r *http.Request) error {
	p := httpapi.PrincipalFrom(r.Context())
	rows, err := s.accounts().PersonalAccessTokens(r.Context(), p.UserID)
	if err != nil {
		return err
	}
	items := make([]PersonalAccessToken, len(rows))
	for i, row := range rows {
		items[i] = publicPAT(row)
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"items": items})
	return nil
}

func (s *Service) handleDeletePAT(w http.ResponseWriter, r *http.Request) error {
	p := httpapi.PrincipalFrom(r.Context())
	err := s.accounts().DeletePersonalAccessToken(r.Context(), p.UserID, r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		return httpapi.NotFound("token_not_found", "no such personal access token")
	}
	if err != nil {
		return fmt.Errorf("deleting personal access token: %w", err)
	}
	s.logger.InfoContext(r.Context(), "personal access token deleted", "user_id", p.UserID, "pat_id", r.PathValue("id"))
	w.WriteHeader(http.StatusNoContent)
	return nil
}
