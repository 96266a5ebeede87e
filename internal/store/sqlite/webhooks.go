package sqlite

import "github.com/dispatch24/dispatch24/internal/store"

// Webhooks returns the executor's queries of the webhooks and the webhooks version tables.
func (e executor) Webhooks() store.Webhooks { return webhooks{e} }

type webhooks struct{ executor }
