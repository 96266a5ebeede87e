package delivery

// ReplayOutcomesSQL exposes the replay outcome query to the plan test.
const ReplayOutcomesSQL = replayOutcomesSQL
