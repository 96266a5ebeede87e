package sqlite

import "github.com/dispatch24/dispatch24/internal/store"

// Submissions returns the executor's queries of the submissions tables.
func (e executor) Submissions() store.Submissions { return submissions{e} }

type submissions struct{ executor }
