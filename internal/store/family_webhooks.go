package store

// Webhooks runs the queries of the webhooks and the webhooks version tables.
type Webhooks interface{}
