package store

// Accounts runs the queries of the users, refresh tokens, personal access tokens, sign-in failures tables.
type Accounts interface{}
