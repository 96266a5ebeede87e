package sqlite

import "github.com/dispatch24/dispatch24/internal/store"

// Deliveries returns the executor's queries of the deliveries and attempts tables.
func (e executor) Deliveries() store.Deliveries { return deliveries{e} }

type deliveries struct{ executor }
