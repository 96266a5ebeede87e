package store

// Events runs the queries of the events and the outbox tables.
type Events interface{}
