package sqlite

import (
	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/sqlcommon"
)

// surveysImportBatchRows is much smaller than PostgreSQL's 1,000: SQLite resolves each $N
// parameter by a linear search while preparing, so the cost of one statement grows with the
// square of its parameters (1,000-row batches made a 100,000-row import ten times slower than
// 50-row ones), and there are no round trips to save.
const surveysImportBatchRows = 50

// Surveys returns the executor's queries of the surveys and respondents tables.
func (e executor) Surveys() store.Surveys { return surveys{e.surveysCommon()} }

// surveys is the shared queries without row locks (the single writer serialises
// read-modify-write transactions), with small import batches and JSON bound as text.
type surveys struct{ sqlcommon.Surveys }

func (e executor) surveysCommon() sqlcommon.Surveys {
	return sqlcommon.Surveys{
		Read:      e.read(),
		Write:     e.write(),
		ForUpdate: "",
		BatchRows: surveysImportBatchRows,
		// Bytes would be stored as a BLOB, which SQLite's JSON functions do not read as JSON
		// text.
		JSON: func(b []byte) any { return string(b) },
	}
}
