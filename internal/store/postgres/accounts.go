package postgres

import "github.com/dispatch24/dispatch24/internal/store"

// Accounts returns the executor's queries of the users, refresh tokens, personal access tokens, sign-in failures tables.
func (e executor) Accounts() store.Accounts { return accounts{e} }

type accounts struct{ executor }
