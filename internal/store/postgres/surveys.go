package postgres

import (
	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/sqlcommon"
)

// surveysImportBatchRows rows of 10 columns per INSERT of a respondent import keep a statement
// at 10,000 parameters, under PostgreSQL's 65,535; bigger statements save round trips.
const surveysImportBatchRows = 1000

// Surveys returns the executor's queries of the surveys and respondents tables.
func (e executor) Surveys() store.Surveys { return surveys{e.surveysCommon()} }

// surveys is the shared queries with PostgreSQL's row locks, import batches and jsonb binding.
type surveys struct{ sqlcommon.Surveys }

func (e executor) surveysCommon() sqlcommon.Surveys {
	return sqlcommon.Surveys{
		Read:      e.read(),
		Write:     e.write(),
		ForUpdate: " FOR UPDATE",
		BatchRows: surveysImportBatchRows,
		// jsonb takes the encoded bytes as they are.
		JSON:          func(b []byte) any { return b },
		UsernameArray: true,
	}
}
