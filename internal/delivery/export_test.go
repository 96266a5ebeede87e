package delivery

import "github.com/dispatch24/dispatch24/internal/store/sqlcommon"

// ReplayOutcomesSQL exposes the replay outcome query to the plan test.
const ReplayOutcomesSQL = sqlcommon.ReplayOutcomesSQL
