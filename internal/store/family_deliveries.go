package store

// Deliveries runs the queries of the deliveries and attempts tables.
type Deliveries interface{}
