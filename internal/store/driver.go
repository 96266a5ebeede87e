package store

import "context"

// Driver is one database's implementation of every table family's queries, in the shape of
// River's riverdriver: internal/store/postgres and internal/store/sqlite implement it, and
// internal/store/drivertest runs one suite against both. Each table family has one owning
// package, the only one that calls its part of the Driver:
//
//	Accounts     users, user_surveys, refresh_tokens, personal_access_tokens,
//	             signin_failures                                        internal/auth
//	Surveys      surveys, respondents                                   internal/survey
//	Submissions  submissions, survey_sessions                           internal/submission
//	Events       events (the outbox and the archive)                    internal/outbox
//	Webhooks     webhooks, webhooks_version, webhook_rate_tokens        internal/endpoint
//	Deliveries   deliveries, delivery_attempts, replays,
//	             delivery_tombstones                                    internal/delivery
//	Leases       leases                                                 internal/retention
//
// Everything else (the dispatcher, test sends, replays, the console, the CLI, the retention
// purge) goes through the owning package. The exceptions are calls inside an owner's own
// transaction that must commit with it, e.g. deleting a survey or a respondent
// (internal/survey) deletes its events and deliveries in that transaction, so that the
// erasure commits whole; internal/archtest lists each (txCrossings).
type Driver interface {
	Executor
	// InTx runs fn in one transaction, committing when fn returns nil and rolling back
	// otherwise, so that several families' writes commit together.
	InTx(ctx context.Context, fn func(tx Executor) error) error
}

// Executor runs every family's queries, on the pool or inside a transaction of InTx.
type Executor interface {
	Accounts() Accounts
	Surveys() Surveys
	Submissions() Submissions
	Events() Events
	Webhooks() Webhooks
	Deliveries() Deliveries
	Leases() Leases
}
