package postgres

import (
	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/sqlcommon"
)

// Leases returns the executor's queries of the leases table.
func (e executor) Leases() store.Leases { return sqlcommon.Leases{Write: e.write()} }
