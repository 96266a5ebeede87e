package auth

import (
	"context"
	"slices"
	"time"

	"github.com/dispatch24/dispatch24/internal/httpapi"
	"github.com/dispatch24/dispatch24/internal/store"
)

// User is a global account as the admin routes show it. The password hash never leaves the
// package: it lives in store.User only.
type User struct {
	ID        string    `json:"id"`
	Email     string    `json:"email"`
	Name      string    `json:"name"`
	Roles     []string  `json:"roles"`
	Surveys   []string  `json:"surveys"`
	Disabled  bool      `json:"disabled"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// publicUser is the account without its password hash.
func publicUser(u store.User) User {
	surveys := u.Surveys
	if surveys == nil {
		surveys = []string{}
	}
	return User{
		ID: u.ID, Email: u.Email, Name: u.Name, Roles: u.Roles, Surveys: surveys, Disabled: u.Disabled,
		CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt,
	}
}

// accounts runs the queries of the tables this package owns, on the pool.
func (s *Service) accounts() store.Accounts { return s.db.Driver.Accounts() }

// globalAccount is what authenticating a request needs of a global account.
type globalAccount struct {
	Email    string
	Roles    []string
	Disabled bool
	Surveys  []string
}

// loadGlobalAccount reads an account's current roles, state and, for staff, assignments.
func loadGlobalAccount(ctx context.Context, acc store.Accounts, id string) (*globalAccount, error) {
	u, err := acc.UserAccess(ctx, id)
	if err != nil {
		return nil, err
	}
	a := &globalAccount{Email: u.Email, Roles: u.Roles, Disabled: u.Disabled}
	if staffOnly(a.Roles) {
		if a.Surveys, err = acc.UserSurveys(ctx, id); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// staffOnly reports whether roles restrict an account to its assigned surveys.
func staffOnly(roles []string) bool {
	return slices.Contains(roles, httpapi.RoleStaff) && !slices.Contains(roles, httpapi.RoleAdmin)
}
