package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/dispatch24/dispatch24/internal/httpapi"
	"github.com/dispatch24/dispatch24/internal/store"
)

// ErrNoAccount is returned by ResetPassword when no global account has the e-mail address.
var ErrNoAccount = errors.New("no global account has this e-mail address")

// ErrInvalid is wrapped by ResetPassword's errors for an e-mail or password that could never
// be valid (the operator's input, not the store's state).
var ErrInvalid = errors.New("invalid")

// ResetPassword is the operator's way back from a lost password (`api reset-password`): it
// sets a new password for the global account with this e-mail and enables the account if it
// was disabled. With pw empty it generates one and returns it (show it once). It runs as no
// principal, so UpdateUser counts it as a reset: the account's refresh tokens are revoked and
// its personal access tokens deleted, as after a compromise.
func (s *Service) ResetPassword(ctx context.Context, email, pw string) (newPassword string, u *User, err error) {
	if httpapi.PrincipalFrom(ctx) != nil {
		return "", nil, errors.New("auth: ResetPassword is an operator's command, not a request's")
	}
	addr, errs := s.checkEmail(email)
	if len(errs) > 0 {
		return "", nil, fmt.Errorf("%w e-mail %q: %s", ErrInvalid, email, errs[0].Message)
	}
	if pw == "" {
		pw = randomString(18)
	} else if errs := s.checkPassword(pw); len(errs) > 0 {
		return "", nil, fmt.Errorf("%w password: %s", ErrInvalid, errs[0].Message)
	}
	row, err := s.accounts().UserByEmail(ctx, addr)
	if errors.Is(err, store.ErrNotFound) {
		return "", nil, fmt.Errorf("%w: %s", ErrNoAccount, addr)
	}
	if err != nil {
		return "", nil, err
	}
	enabled := false
	u, err = s.UpdateUser(ctx, row.ID, UserPatch{Password: &pw, Disabled: &enabled})
	var p *httpapi.Problem
	if errors.As(err, &p) && p.Code == "user_not_found" {
		// Deleted between the lookup and the update.
		return "", nil, fmt.Errorf("%w: %s", ErrNoAccount, addr)
	}
	if err != nil {
		return "", nil, fmt.Errorf("resetting the password: %w", err)
	}
	s.logger.InfoContext(ctx, "password reset by an operator", "user_id", u.ID, "roles", strings.Join(u.Roles, ","),
		"was_disabled", row.Disabled)
	return pw, u, nil
}
