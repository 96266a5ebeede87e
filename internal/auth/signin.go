package auth

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/dispatch24/dispatch24/internal/httpapi"
	"github.com/dispatch24/dispatch24/internal/password"
	"github.com/dispatch24/dispatch24/internal/store"
)

// Bounds of sign-in inputs. Longer values are refused before any work.
const (
	signInBodyLimit = 8 << 10
	maxEmailLen     = 254
	maxPasswordLen  = 1024
	maxUsernameLen  = 256
	maxSurveyIDLen  = 64
	maxAuthTokenLen = 256
)

// SignIn checks a global account's e-mail and password and returns a refresh token.
// Unknown accounts, wrong passwords and disabled accounts all give ErrInvalidCredentials,
// after the same amount of work; too many failures give a *RateLimitError, and a full
// hashing bound password.ErrBusy.
func (s *Service) SignIn(ctx context.Context, email, pw, clientIP string) (string, error) {
	email = normalizeEmail(email)
	log := s.logger.With("method", "password", "kind", kindGlobal, "account", email, "client", clientIP)
	leave, err := s.admit(ctx, log)
	if err != nil {
		return "", err
	}
	defer leave()
	att, err := s.limiter.reserve(ctx, "email:"+email, clientIP)
	if err != nil {
		return "", s.signInRefused(ctx, log, err)
	}
	u, err := s.accounts().UserByEmail(ctx, email)
	found := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return "", err
	}
	hash := s.dummyHash
	if found {
		hash = u.PasswordHash
	}
	ok, err := s.verify(ctx, hash, pw)
	if err != nil {
		return "", s.checkNotRun(ctx, log, att, err)
	}
	switch {
	case !found:
		return "", s.signInFailed(ctx, log, "unknown_account")
	case !ok:
		return "", s.signInFailed(ctx, log, "wrong_password")
	case u.Disabled:
		return "", s.signInFailed(ctx, log, "disabled")
	}
	return s.signInSucceeded(ctx, log, att, u.ID, kindGlobal)
}

// SignInAlias checks a respondent's survey, user name and password and returns a refresh
// token. Respondents without a password cannot sign in this way.
func (s *Service) SignInAlias(ctx context.Context, surveyID, username, pw, clientIP string) (string, error) {
	log := s.logger.With("method", "alias", "kind", kindRespondent, "survey_id", surveyID, "account", username, "client", clientIP)
	leave, err := s.admit(ctx, log)
	if err != nil {
		return "", err
	}
	defer leave()
	att, err := s.limiter.reserve(ctx, "alias:"+surveyID+"\x00"+username, clientIP)
	if err != nil {
		return "", s.signInRefused(ctx, log, err)
	}
	rsp, err := s.cfg.Respondents.Respondent(ctx, surveyID, username)
	found := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return "", err
	}
	// The surveys family stores "no password" (token sign-in only) as NULL and reads it as "".
	if !found || rsp.PasswordHash == "" {
		if _, err := s.verify(ctx, s.dummyHash, pw); err != nil {
			return "", s.checkNotRun(ctx, log, att, err)
		}
		if !found {
			return "", s.signInFailed(ctx, log, "unknown_account")
		}
		return "", s.signInFailed(ctx, log, "no_password")
	}
	weak := password.Weaker(rsp.PasswordHash, s.cfg.PasswordParams)
	ok, err := s.verify(ctx, rsp.PasswordHash, pw)
	if err != nil {
		return "", s.checkNotRun(ctx, log, att, err)
	}
	if !ok {
		if weak {
			// An imported (cheap) hash fails fast; pad to the cost of an unknown account so
			// the time taken does not tell which user names exist. The guess was checked, so
			// a full bound here still ends as a failure.
			_, _ = s.verify(ctx, s.dummyHash, pw)
		}
		return "", s.signInFailed(ctx, log, "wrong_password")
	}
	if rsp.Disabled {
		return "", s.signInFailed(ctx, log, "disabled")
	}
	if weak {
		s.upgradeRespondentHash(ctx, log, rsp.ID, rsp.PasswordHash, pw)
	}
	return s.signInSucceeded(ctx, log, att, rsp.ID, kindRespondent)
}

// upgradeRespondentHash replaces an imported password's cheap hash with one of full cost, now
// that the password is known. The update only applies while the stored hash is still the one
// checked, so a password changed meanwhile is kept; a failure (a full hashing bound among
// them: the background upgrade will do it) is logged and the sign-in goes on.
func (s *Service) upgradeRespondentHash(ctx context.Context, log *slog.Logger, id, oldHash, pw string) {
	h, err := s.cfg.Hasher.Hash(ctx, s.cfg.PasswordParams, pw)
	if err == nil {
		_, err = s.cfg.Respondents.SwapPasswordHash(ctx, id, oldHash, h)
	}
	if err != nil {
		log.WarnContext(ctx, "upgrading an imported password hash", "err", err)
	}
}

// SignInToken checks a respondent's URL authentication token and returns a refresh token.
// The token itself is never logged.
func (s *Service) SignInToken(ctx context.Context, authToken, clientIP string) (string, error) {
	log := s.logger.With("method", "token", "kind", kindRespondent, "client", clientIP)
	if authToken == "" || len(authToken) > maxAuthTokenLen {
		return "", s.signInFailed(ctx, log, "malformed_token")
	}
	att, err := s.limiter.reserve(ctx, "token:"+authToken, clientIP)
	if err != nil {
		return "", s.signInRefused(ctx, log, err)
	}
	rsp, err := s.cfg.Respondents.RespondentByAuthToken(ctx, authToken)
	found := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return "", err
	}
	if !found || subtle.ConstantTimeCompare([]byte(rsp.AuthToken), []byte(authToken)) != 1 {
		return "", s.signInFailed(ctx, log, "unknown_token")
	}
	log = log.With("survey_id", rsp.SurveyID, "account", rsp.Username)
	if rsp.Disabled {
		return "", s.signInFailed(ctx, log, "disabled")
	}
	return s.signInSucceeded(ctx, log, att, rsp.ID, kindRespondent)
}

// verify checks pw against hash within the process's hashing bound. A stored hash this
// service cannot read is logged and treated as a wrong password, after verifying the dummy
// so the time spent is the same. The error is password.ErrBusy or ctx's: the check did not
// run.
func (s *Service) verify(ctx context.Context, hash, pw string) (bool, error) {
	ok, err := s.cfg.Hasher.Verify(ctx, hash, pw)
	if errors.Is(err, password.ErrMalformedHash) {
		s.logger.ErrorContext(ctx, "unreadable password hash", "err", err)
		_, err = s.cfg.Hasher.Verify(ctx, s.dummyHash, pw)
		return false, err
	}
	return ok, err
}

// admit takes a place among the requests waiting to check a password (password.Hasher.Admit)
// before any store work, or refuses the sign-in as busy at once.
func (s *Service) admit(ctx context.Context, log *slog.Logger) (leave func(), err error) {
	leave, err = s.cfg.Hasher.Admit()
	if err != nil {
		log.WarnContext(ctx, "sign-in refused: too many password checks pending")
		s.cfg.Metrics.rejected(RejectBusy)
		return nil, &BusyError{RetryAfter: s.cfg.Hasher.Config().RetryAfter}
	}
	return leave, nil
}

// checkNotRun ends an attempt whose password was not checked: its reservation is given back
// (it was no guess) and the error returned.
func (s *Service) checkNotRun(ctx context.Context, log *slog.Logger, att *attempt, err error) error {
	if cerr := att.canceled(context.WithoutCancel(ctx)); cerr != nil {
		log.WarnContext(ctx, "giving back a sign-in reservation", "err", cerr)
	}
	if errors.Is(err, password.ErrBusy) {
		log.WarnContext(ctx, "sign-in refused: too many password checks at once")
		s.cfg.Metrics.rejected(RejectBusy)
		return &BusyError{RetryAfter: s.cfg.Hasher.Config().RetryAfter}
	}
	return err
}

func (s *Service) signInFailed(ctx context.Context, log *slog.Logger, reason string) error {
	log.WarnContext(ctx, "sign-in failed", "reason", reason)
	s.cfg.Metrics.rejected(RejectBadCredentials)
	return ErrInvalidCredentials
}

func (s *Service) signInRefused(ctx context.Context, log *slog.Logger, err error) error {
	var rl *RateLimitError
	if errors.As(err, &rl) {
		log.WarnContext(ctx, "sign-in refused: too many failures", "retry_after", rl.RetryAfter)
		s.cfg.Metrics.rejected(RejectRateLimited)
	}
	return err
}

func (s *Service) signInSucceeded(ctx context.Context, log *slog.Logger, att *attempt, userID, kind string) (string, error) {
	if err := att.succeeded(ctx); err != nil {
		// The sign-in is valid; a stale failure count only shortens the next allowance.
		log.WarnContext(ctx, "resetting sign-in failures", "err", err)
	}
	tok, err := s.issueRefresh(ctx, userID, kind)
	if err != nil {
		return "", err
	}
	log.InfoContext(ctx, "signed in", "user_id", userID)
	return tok, nil
}

// issueRefresh signs a refresh token and records its jti.
func (s *Service) issueRefresh(ctx context.Context, userID, kind string) (string, error) {
	c := Claims{Type: TypeRefresh, UserID: userID}
	c.Subject = userID
	tok, jti, err := s.tokens.sign(c, s.cfg.RefreshTTL)
	if err != nil {
		return "", err
	}
	now := s.cfg.NowFunc()
	rec := store.RefreshToken{JTI: jti, UserID: userID, Kind: kind, CreatedAt: now, ExpiresAt: now.Add(s.cfg.RefreshTTL)}
	if err := s.accounts().InsertRefreshToken(ctx, rec); err != nil {
		return "", err
	}
	return tok, nil
}

// Refresh checks a refresh token against its record and its account and returns a new
// access token.
func (s *Service) Refresh(ctx context.Context, refreshToken string) (string, error) {
	c, err := s.tokens.parse(refreshToken, TypeRefresh)
	if err != nil {
		return "", err
	}
	rec, err := s.accounts().RefreshToken(ctx, c.ID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return "", fmt.Errorf("%w: unknown refresh token", ErrInvalidToken)
	case err != nil:
		return "", err
	case rec.UserID != c.Subject:
		return "", fmt.Errorf("%w: refresh token of another account", ErrInvalidToken)
	case !rec.RevokedAt.IsZero():
		return "", ErrTokenRevoked
	case !rec.ExpiresAt.After(s.cfg.NowFunc()):
		return "", ErrTokenExpired
	case !rec.Exists || rec.Disabled:
		return "", fmt.Errorf("%w: the account is deleted or disabled", ErrInvalidToken)
	}
	access := Claims{Type: TypeAccess, UserID: rec.UserID}
	access.Subject = rec.UserID
	if rec.Kind == kindRespondent {
		access.Roles = []string{httpapi.RoleRespondent}
		access.SurveyID, access.Username = rec.SurveyID, rec.Username
	} else {
		access.Roles = rec.Roles
	}
	tok, _, err := s.tokens.sign(access, s.cfg.AccessTTL)
	return tok, err
}

// SignOut revokes a refresh token.
func (s *Service) SignOut(ctx context.Context, refreshToken string) error {
	c, err := s.tokens.parse(refreshToken, TypeRefresh)
	if err != nil {
		return err
	}
	ok, err := s.accounts().RevokeRefreshToken(ctx, c.ID, c.Subject, s.cfg.NowFunc())
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w: unknown or already revoked refresh token", ErrInvalidToken)
	}
	s.logger.InfoContext(ctx, "signed out", "user_id", c.Subject)
	return nil
}

type signInRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

type aliasSignInRequest struct {
	SurveyID string `json:"surveyId"`
	UserName string `json:"userName"`
	Password string `json:"password"`
}

func (s *Service) handleSignIn(w http.ResponseWriter, r *http.Request) error {
	var req signInRequest
	if err := httpapi.DecodeJSON(w, r, signInBodyLimit, &req); err != nil {
		return err
	}
	if errs := append(required("email", req.Email, maxEmailLen), required("password", req.Password, maxPasswordLen)...); len(errs) > 0 {
		return httpapi.Validation(errs...)
	}
	tok, err := s.SignIn(r.Context(), req.Email, req.Password, httpapi.ClientIP(r))
	if err != nil {
		return problem(err)
	}
	writeToken(w, "refreshToken", tok)
	return nil
}

func (s *Service) handleSignInAlias(w http.ResponseWriter, r *http.Request) error {
	var req aliasSignInRequest
	if err := httpapi.DecodeJSON(w, r, signInBodyLimit, &req); err != nil {
		return err
	}
	errs := required("surveyId", req.SurveyID, maxSurveyIDLen)
	errs = append(errs, required("userName", req.UserName, maxUsernameLen)...)
	errs = append(errs, required("password", req.Password, maxPasswordLen)...)
	if len(errs) > 0 {
		return httpapi.Validation(errs...)
	}
	tok, err := s.SignInAlias(r.Context(), req.SurveyID, req.UserName, req.Password, httpapi.ClientIP(r))
	if err != nil {
		return problem(err)
	}
	writeToken(w, "refreshToken", tok)
	return nil
}

func (s *Service) handleSignInToken(w http.ResponseWriter, r *http.Request) error {
	tok, err := s.SignInToken(r.Context(), r.PathValue("token"), httpapi.ClientIP(r))
	if err != nil {
		return problem(err)
	}
	writeToken(w, "refreshToken", tok)
	return nil
}

func (s *Service) handleRefresh(w http.ResponseWriter, r *http.Request) error {
	raw, ok := credentials(r)
	if !ok {
		return httpapi.Unauthorized("unauthenticated", "send the refresh token in X-Auth-Token")
	}
	tok, err := s.Refresh(r.Context(), raw)
	if err != nil {
		return problem(err)
	}
	writeToken(w, "accessToken", tok)
	return nil
}

func (s *Service) handleSignOut(w http.ResponseWriter, r *http.Request) error {
	raw, ok := credentials(r)
	if !ok {
		return httpapi.Unauthorized("unauthenticated", "send the refresh token in X-Auth-Token")
	}
	if err := s.SignOut(r.Context(), raw); err != nil {
		return problem(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// writeToken answers 200 {field: tok}, never cached.
func writeToken(w http.ResponseWriter, field, tok string) {
	w.Header().Set("Cache-Control", "no-store")
	httpapi.WriteJSON(w, http.StatusOK, map[string]string{field: tok})
}

// required checks a required string field's presence and length (in characters).
func required(field, v string, maxLen int) []httpapi.FieldError {
	switch {
	case v == "":
		return []httpapi.FieldError{{Field: field, Message: "is required"}}
	case utf8.RuneCountInString(v) > maxLen:
		return []httpapi.FieldError{{Field: field, Message: fmt.Sprintf("must be at most %d characters", maxLen)}}
	}
	return nil
}

// normalizeEmail is the stored form of an e-mail address: trimmed and lower-cased.
func normalizeEmail(s string) string { return strings.ToLower(strings.TrimSpace(s)) }
