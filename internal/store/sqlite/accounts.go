package sqlite

import (
	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/sqlcommon"
)

// Accounts returns the executor's queries of the users, refresh tokens, personal access
// tokens and sign-in failures tables: the shared SQL, reads on the reader pool and writes on
// the writer (both on the transaction inside InTx).
func (e executor) Accounts() store.Accounts {
	return accounts{sqlcommon.Accounts{Read: e.read(), Write: e.write()}}
}

type accounts struct{ sqlcommon.Accounts }
