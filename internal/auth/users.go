package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/dispatch24/dispatch24/internal/httpapi"
	"github.com/dispatch24/dispatch24/internal/password"
	"github.com/dispatch24/dispatch24/internal/store"
)

const (
	maxNameLen    = 200
	maxUserSurvey = 10000
)

// NewUser is the body of POST /api/admin/users.
type NewUser struct {
	Email    string   `json:"email"`
	Password string   `json:"password"`
	Name     string   `json:"name"`
	Roles    []string `json:"roles"`
	Surveys  []string `json:"surveys"`
}

// UserPatch is the body of PATCH /api/admin/users/{id}; nil fields are left as they are.
type UserPatch struct {
	Email    *string   `json:"email"`
	Password *string   `json:"password"`
	Name     *string   `json:"name"`
	Roles    *[]string `json:"roles"`
	Surveys  *[]string `json:"surveys"`
	Disabled *bool     `json:"disabled"`
}

func errEmailTaken() error {
	return httpapi.Conflict("email_taken", "another account has this e-mail address")
}

func errLastAdmin() error {
	return httpapi.Conflict("last_admin", "this would leave no enabled admin account")
}

func errNoUser() error { return httpapi.NotFound("user_not_found", "no such user") }

// CreateUser creates a global account.
func (s *Service) CreateUser(ctx context.Context, in NewUser) (*User, error) {
	var errs []httpapi.FieldError
	email, e := s.checkEmail(in.Email)
	errs = append(errs, e...)
	errs = append(errs, s.checkPassword(in.Password)...)
	name, e := checkName(in.Name)
	errs = append(errs, e...)
	roles, e := checkRoles(in.Roles)
	errs = append(errs, e...)
	surveys, e := checkSurveyIDs(in.Surveys)
	errs = append(errs, e...)
	if len(errs) > 0 {
		return nil, httpapi.Validation(errs...)
	}
	hash, err := s.hashPassword(ctx, in.Password)
	if err != nil {
		return nil, err
	}
	now := s.cfg.NowFunc().UTC().Truncate(time.Microsecond)
	u := store.User{
		ID: newID("usr_"), Email: email, Name: name, PasswordHash: hash, Roles: roles, Surveys: surveys,
		CreatedAt: now, UpdatedAt: now,
	}
	err = s.db.Driver.InTx(ctx, func(tx store.Executor) error {
		acc := tx.Accounts()
		if err := checkSurveysExist(ctx, tx.Surveys(), surveys); err != nil {
			return err
		}
		return acc.InsertUser(ctx, u)
	})
	if errors.Is(err, store.ErrConflict) {
		return nil, errEmailTaken()
	}
	if err != nil {
		return nil, err
	}
	s.logger.InfoContext(ctx, "user created", "user_id", u.ID, "roles", roles)
	out := publicUser(u)
	return &out, nil
}

// UpdateUser changes a global account. Disabling it or changing its password revokes its
// refresh tokens; its personal access tokens stop working while it is disabled. A password
// set by another account (an admin resetting it, as after a compromise) also deletes the
// account's personal access tokens, which only their owner can list; owners changing their
// own password keep theirs (they list and delete them themselves), so routine changes do not
// break the jobs that use them.
func (s *Service) UpdateUser(ctx context.Context, id string, in UserPatch) (*User, error) {
	var errs []httpapi.FieldError
	var email, name string
	var roles, surveys []string
	if in.Email != nil {
		var e []httpapi.FieldError
		email, e = s.checkEmail(*in.Email)
		errs = append(errs, e...)
	}
	if in.Password != nil {
		errs = append(errs, s.checkPassword(*in.Password)...)
	}
	if in.Name != nil {
		var e []httpapi.FieldError
		name, e = checkName(*in.Name)
		errs = append(errs, e...)
	}
	if in.Roles != nil {
		var e []httpapi.FieldError
		roles, e = checkRoles(*in.Roles)
		errs = append(errs, e...)
	}
	if in.Surveys != nil {
		var e []httpapi.FieldError
		surveys, e = checkSurveyIDs(*in.Surveys)
		errs = append(errs, e...)
	}
	if len(errs) > 0 {
		return nil, httpapi.Validation(errs...)
	}
	var hash string
	if in.Password != nil {
		var err error
		if hash, err = s.hashPassword(ctx, *in.Password); err != nil {
			return nil, err
		}
	}
	// A reset is a password set by anyone but the account itself (the admin API, or no
	// principal at all: an operator's command).
	p := httpapi.PrincipalFrom(ctx)
	reset := p == nil || p.UserID != id
	now := s.cfg.NowFunc().UTC().Truncate(time.Microsecond)
	var u store.User
	err := s.db.Driver.InTx(ctx, func(tx store.Executor) error {
		acc := tx.Accounts()
		var err error
		if u, err = acc.UserByID(ctx, id); err != nil {
			return err
		}
		wasAdmin := !u.Disabled && slices.Contains(u.Roles, httpapi.RoleAdmin)
		if in.Email != nil {
			u.Email = email
		}
		if in.Password != nil {
			u.PasswordHash = hash
		}
		if in.Name != nil {
			u.Name = name
		}
		if in.Roles != nil {
			u.Roles = roles
		}
		if in.Disabled != nil {
			u.Disabled = *in.Disabled
		}
		u.UpdatedAt = now
		if err := acc.UpdateUser(ctx, u); err != nil {
			return err
		}
		if in.Surveys != nil {
			if err := checkSurveysExist(ctx, tx.Surveys(), surveys); err != nil {
				return err
			}
			if err := acc.SetUserSurveys(ctx, id, surveys); err != nil {
				return err
			}
			u.Surveys = surveys
		}
		if wasAdmin && (u.Disabled || !slices.Contains(u.Roles, httpapi.RoleAdmin)) {
			if n, err := acc.CountEnabledWithRole(ctx, httpapi.RoleAdmin); err != nil {
				return err
			} else if n == 0 {
				return errLastAdmin()
			}
		}
		if in.Password != nil && reset {
			if err := acc.DeleteUserPersonalAccessTokens(ctx, id); err != nil {
				return err
			}
		}
		if u.Disabled || in.Password != nil {
			return acc.RevokeUserRefreshTokens(ctx, id, now)
		}
		return nil
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, errNoUser()
	case errors.Is(err, store.ErrConflict):
		return nil, errEmailTaken()
	case err != nil:
		return nil, err
	}
	s.logger.InfoContext(ctx, "user updated", "user_id", id, "roles", u.Roles, "disabled", u.Disabled,
		"password_changed", in.Password != nil, "password_reset", in.Password != nil && reset)
	out := publicUser(u)
	return &out, nil
}

// DeleteUser deletes a global account, revoking its refresh tokens; its personal access
// tokens and survey assignments are deleted with it.
func (s *Service) DeleteUser(ctx context.Context, id string) error {
	err := s.db.Driver.InTx(ctx, func(tx store.Executor) error {
		acc := tx.Accounts()
		u, err := acc.UserByID(ctx, id)
		if err != nil {
			return err
		}
		if err := acc.DeleteUser(ctx, id); err != nil {
			return err
		}
		if !u.Disabled && slices.Contains(u.Roles, httpapi.RoleAdmin) {
			if n, err := acc.CountEnabledWithRole(ctx, httpapi.RoleAdmin); err != nil {
				return err
			} else if n == 0 {
				return errLastAdmin()
			}
		}
		return acc.RevokeUserRefreshTokens(ctx, id, s.cfg.NowFunc())
	})
	if errors.Is(err, store.ErrNotFound) {
		return errNoUser()
	}
	if err != nil {
		return err
	}
	s.logger.InfoContext(ctx, "user deleted", "user_id", id)
	return nil
}

// User returns one global account.
func (s *Service) User(ctx context.Context, id string) (*User, error) {
	u, err := s.accounts().UserByID(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errNoUser()
	}
	if err != nil {
		return nil, err
	}
	out := publicUser(u)
	return &out, nil
}

// Users lists the global accounts by e-mail.
func (s *Service) Users(ctx context.Context) ([]User, error) {
	rows, err := s.accounts().Users(ctx)
	if err != nil {
		return nil, err
	}
	users := make([]User, len(rows))
	for i, u := range rows {
		users[i] = publicUser(u)
	}
	return users, nil
}

func (s *Service) handleCreateUser(w http.ResponseWriter, r *http.Request) error {
	var in NewUser
	if err := httpapi.DecodeJSON(w, r, 0, &in); err != nil {
		return err
	}
	u, err := s.CreateUser(r.Context(), in)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusCreated, u)
	return nil
}

func (s *Service) handleListUsers(w http.ResponseWriter, r *http.Request) error {
	users, err := s.Users(r.Context())
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"items": users})
	return nil
}

func (s *Service) handleGetUser(w http.ResponseWriter, r *http.Request) error {
	u, err := s.User(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, u)
	return nil
}

func (s *Service) handlePatchUser(w http.ResponseWriter, r *http.Request) error {
	var in UserPatch
	if err := httpapi.DecodeJSON(w, r, 0, &in); err != nil {
		return err
	}
	u, err := s.UpdateUser(r.Context(), r.PathValue("id"), in)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, u)
	return nil
}

func (s *Service) handleDeleteUser(w http.ResponseWriter, r *http.Request) error {
	if err := s.DeleteUser(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// checkEmail validates and normalises an e-mail address: one @ with text on both sides, no
// spaces or control characters, at most 254 characters.
func (s *Service) checkEmail(v string) (string, []httpapi.FieldError) {
	email := normalizeEmail(v)
	if errs := required("email", email, maxEmailLen); errs != nil {
		return "", errs
	}
	local, domain, ok := strings.Cut(email, "@")
	bad := !ok || local == "" || domain == "" || strings.Contains(domain, "@") || !utf8.ValidString(email) ||
		strings.ContainsFunc(email, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) })
	if bad {
		return "", []httpapi.FieldError{{Field: "email", Message: "must be an e-mail address"}}
	}
	return email, nil
}

// hashPassword hashes a password being set within the process's hashing bound; a full bound
// is a 503 problem.
func (s *Service) hashPassword(ctx context.Context, pw string) (string, error) {
	hash, err := s.cfg.Hasher.Hash(ctx, s.cfg.PasswordParams, pw)
	if errors.Is(err, password.ErrBusy) {
		return "", BusyProblem(s.cfg.Hasher.Config().RetryAfter)
	}
	if err != nil {
		return "", fmt.Errorf("hashing password: %w", err)
	}
	return hash, nil
}

func (s *Service) checkPassword(pw string) []httpapi.FieldError {
	n := utf8.RuneCountInString(pw)
	switch {
	case n < s.cfg.MinPasswordLen:
		return []httpapi.FieldError{{Field: "password", Message: fmt.Sprintf("must be at least %d characters", s.cfg.MinPasswordLen)}}
	case n > maxPasswordLen:
		return []httpapi.FieldError{{Field: "password", Message: fmt.Sprintf("must be at most %d characters", maxPasswordLen)}}
	}
	return nil
}

func checkName(v string) (string, []httpapi.FieldError) {
	v = strings.TrimSpace(v)
	if utf8.RuneCountInString(v) > maxNameLen || !utf8.ValidString(v) {
		return "", []httpapi.FieldError{{Field: "name", Message: fmt.Sprintf("must be valid text of at most %d characters", maxNameLen)}}
	}
	return v, nil
}

// checkRoles accepts a non-empty set of admin and staff, returned sorted without duplicates.
func checkRoles(roles []string) ([]string, []httpapi.FieldError) {
	if len(roles) == 0 {
		return nil, []httpapi.FieldError{{Field: "roles", Message: `is required: ["admin"] or ["staff"]`}}
	}
	out := make([]string, 0, len(roles))
	for i, r := range roles {
		if r != httpapi.RoleAdmin && r != httpapi.RoleStaff {
			return nil, []httpapi.FieldError{{Field: fmt.Sprintf("roles[%d]", i), Message: "must be admin or staff"}}
		}
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	slices.Sort(out)
	return out, nil
}

// checkSurveyIDs returns the ids sorted without duplicates; whether they exist is checked in
// the writing transaction.
func checkSurveyIDs(ids []string) ([]string, []httpapi.FieldError) {
	if len(ids) > maxUserSurvey {
		return nil, []httpapi.FieldError{{Field: "surveys", Message: fmt.Sprintf("at most %d surveys", maxUserSurvey)}}
	}
	out := make([]string, 0, len(ids))
	for i, id := range ids {
		if id == "" || len(id) > maxSurveyIDLen {
			return nil, []httpapi.FieldError{{Field: fmt.Sprintf("surveys[%d]", i), Message: "must be a survey id"}}
		}
		out = append(out, id)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// checkSurveysExist refuses assignments to surveys that do not exist. It reads the surveys
// family inside the transaction that writes the assignments, so they commit together.
func checkSurveysExist(ctx context.Context, sv store.Surveys, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	missing, err := sv.MissingSurveys(ctx, ids)
	if err != nil {
		return err
	}
	if len(missing) == 0 {
		return nil
	}
	errs := make([]httpapi.FieldError, 0, len(missing))
	for _, id := range missing {
		errs = append(errs, httpapi.FieldError{Field: "surveys", Message: fmt.Sprintf("no survey %q", id)})
	}
	return httpapi.Validation(errs...)
}
