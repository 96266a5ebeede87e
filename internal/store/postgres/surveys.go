package postgres

import "github.com/dispatch24/dispatch24/internal/store"

// Surveys returns the executor's queries of the surveys and respondents tables.
func (e executor) Surveys() store.Surveys { return surveys{e} }

type surveys struct{ executor }
