package postgres

import "github.com/dispatch24/dispatch24/internal/store"

// Events returns the executor's queries of the events and the outbox tables.
func (e executor) Events() store.Events { return events{e} }

type events struct{ executor }
