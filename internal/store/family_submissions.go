package store

// Submissions runs the queries of the submissions tables.
type Submissions interface{}
