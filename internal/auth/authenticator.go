package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/dispatch24/dispatch24/internal/httpapi"
	"github.com/dispatch24/dispatch24/internal/store"
)

// PATPrefix starts every personal access token, so scanners and people recognise one.
const PATPrefix = "d24pat_"

// patLen is the length of a personal access token: the prefix and 32 bytes in base64url.
const patLen = len(PATPrefix) + 43

// Authenticate implements httpapi.Authenticator: the token comes from X-Auth-Token or
// Authorization: Bearer. No credentials give (nil, nil); bad ones a 401 problem.
func (s *Service) Authenticate(ctx context.Context, r *http.Request) (*httpapi.Principal, error) {
	raw, ok := credentials(r)
	if !ok {
		return nil, nil
	}
	p, err := s.AuthenticateToken(ctx, raw)
	if err != nil {
		return nil, problem(err)
	}
	return p, nil
}

// AuthenticateToken returns the principal of an access token or a personal access token.
func (s *Service) AuthenticateToken(ctx context.Context, raw string) (*httpapi.Principal, error) {
	if strings.HasPrefix(raw, PATPrefix) {
		return s.authenticatePAT(ctx, raw)
	}
	c, err := s.tokens.parse(raw, TypeAccess)
	if err != nil {
		return nil, err
	}
	if c.respondent() {
		// Self-contained: the respondent is checked again at the next refresh.
		return &httpapi.Principal{
			UserID:   c.Subject,
			Kind:     httpapi.KindRespondent,
			Roles:    []string{httpapi.RoleRespondent},
			SurveyID: c.SurveyID,
			Username: c.Username,
			TokenID:  c.ID,
		}, nil
	}
	acct, err := loadGlobalAccount(ctx, s.accounts(), c.Subject)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, fmt.Errorf("%w: the account no longer exists", ErrInvalidToken)
	case err != nil:
		return nil, err
	case acct.Disabled:
		return nil, fmt.Errorf("%w: the account is disabled", ErrInvalidToken)
	}
	return &httpapi.Principal{
		UserID:   c.Subject,
		Kind:     httpapi.KindGlobal,
		Roles:    acct.Roles,
		Username: acct.Email,
		Surveys:  acct.Surveys,
		TokenID:  c.ID,
	}, nil
}

func (s *Service) authenticatePAT(ctx context.Context, raw string) (*httpapi.Principal, error) {
	if len(raw) != patLen {
		return nil, fmt.Errorf("%w: malformed personal access token", ErrInvalidToken)
	}
	if _, err := b64url.DecodeString(raw[len(PATPrefix):]); err != nil {
		return nil, fmt.Errorf("%w: malformed personal access token", ErrInvalidToken)
	}
	hash := hashPAT(raw)
	rec, err := s.accounts().PersonalAccessTokenByHash(ctx, hash)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, fmt.Errorf("%w: unknown personal access token", ErrInvalidToken)
	case err != nil:
		return nil, err
	case subtle.ConstantTimeCompare([]byte(rec.Hash), []byte(hash)) != 1:
		return nil, fmt.Errorf("%w: unknown personal access token", ErrInvalidToken)
	}
	now := s.cfg.NowFunc()
	if !now.Before(rec.ExpiresAt) {
		return nil, ErrTokenExpired
	}
	if rec.Disabled {
		return nil, fmt.Errorf("%w: the account is disabled", ErrInvalidToken)
	}
	stale := now.Add(-s.cfg.PATTouchInterval)
	// The stored times have microseconds: compare with stale as the update will.
	if rec.LastUsedAt.IsZero() || rec.LastUsedAt.Before(stale.Truncate(time.Microsecond)) {
		if err := s.accounts().TouchPersonalAccessToken(ctx, rec.ID, now, stale); err != nil {
			// Bookkeeping only: the request goes ahead.
			s.logger.WarnContext(ctx, "recording personal access token use", "pat_id", rec.ID, "err", err)
		}
	}
	p := &httpapi.Principal{
		UserID:   rec.UserID,
		Kind:     httpapi.KindGlobal,
		Roles:    rec.Roles,
		Username: rec.Email,
		TokenID:  rec.ID,
		PAT:      true,
	}
	if staffOnly(p.Roles) {
		if p.Surveys, err = s.accounts().UserSurveys(ctx, rec.UserID); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// credentials returns the token of a request: X-Auth-Token (the seed's header) first, then
// Authorization: Bearer. Other Authorization schemes are not credentials of ours.
func credentials(r *http.Request) (string, bool) {
	if v := r.Header.Get("X-Auth-Token"); v != "" {
		return strings.TrimSpace(v), true
	}
	if v := r.Header.Get("Authorization"); v != "" {
		scheme, tok, _ := strings.Cut(v, " ")
		if strings.EqualFold(scheme, "Bearer") {
			return strings.TrimSpace(tok), true
		}
	}
	return "", false
}

// hashPAT is the stored form of a personal access token: hex SHA-256. The token has 256
// random bits, so a fast hash is enough; only a leak of the table is defended against.
func hashPAT(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}
