package sqlite

import (
	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/sqlcommon"
)

// Webhooks returns the executor's queries of the webhooks and the webhooks version tables. The
// shared SQL serves as is: the one writer's transactions need no row locks.
func (e executor) Webhooks() store.Webhooks {
	return sqlcommon.Webhooks{Read: e.read(), Write: e.write(),
		EventSeqExpr: "(SELECT seq FROM events_seq WHERE id = 1)"}
}
