// Package retention deletes what is past RETENTION (CONTRACT §8, "Data lifecycle"): events,
// deliveries and delivery attempt logs whose last activity is older than that. Submissions are
// the survey's records and are not touched; erasure of a survey or a respondent is not this
// package's job.
//
// # What goes, what stays
//
// A delivery's last activity is its updated_at (the last attempt's result, or its creation).
// A finished delivery (succeeded, failed, skipped) older than the cutoff goes with its attempt
// log, in one transaction; a pending one never goes, however old. An event goes once it is
// published, was published before the cutoff and no delivery refers to it any more: its last
// activity is the latest of its publication and its deliveries', so an event a pending delivery
// still needs (its retries read the payload from the archive), or that a recent replay's
// delivery refers to, stays. An event not yet published is never touched: the outbox still has
// to publish it. (One race is left open: a replay that reads a delivery in the very instant the
// purge deletes it and its event may create a delivery of an event that is gone; the replay of
// a purged delivery is answered as such.)
//
// # One purger at a time
//
// Every api and dispatcher runs a Purger (cmd/api and cmd/dispatcher wire it). Every
// Interval each tries to take the lease "retention-purge" in the leases table (store.Leases:
// one upsert that takes a free or expired lease or renews the holder's own); the one that has
// it purges, renewing the lease before every batch, and releases it at the end. A holder that
// dies frees the lease when it expires (LeaseTTL, 2 minutes). Leases compare the processes'
// clocks, which NTP keeps within milliseconds of each other: far inside a lease.
//
// # Gently
//
// The purge deletes in batches of BatchSize (1,000) deliveries with their attempts, oldest
// first, each its own short transaction, and pauses after each at least as long as it took: it
// holds a connection (on SQLite the one writer, which intake and the dispatcher's result
// writes share) at most half of the time, and no transaction for more than tens of
// milliseconds. Its queries read the oldest entries of partial indexes (migration 105:
// deliveries_expiry_idx on updated_at for finished deliveries, events_expiry_idx on
// (published_at, id) for published events) with ORDER BY … LIMIT, a plan that stays right
// without planner statistics (autovacuum may be off, ANALYZE never run), and on PostgreSQL
// skip rows another transaction holds. Attempts are found through their primary key
// (= ANY(array) on PostgreSQL). Events are read in windows with a keyset cursor, so events kept
// by their deliveries are read once per purge, not once per batch.
//
// # Mechanism: batched DELETEs, not partitions (measured)
//
// FIGURES
//
// # Space
//
// PostgreSQL: after a purge that deleted rows, a VACUUM of the three tables throttled like
// autovacuum (vacuum_cost_delay 2ms) makes the space reusable, where autovacuum is off or
// behind; the files keep their size. SQLite: PRAGMA incremental_vacuum, 2,048 pages a step
// with the same pacing, truncates the file. It needs auto_vacuum=INCREMENTAL, which SQLite only
// takes on an empty database or with a VACUUM that rewrites the whole file under the writer
// lock: the purger does that itself for a database of at most 64 MiB;
// a larger one (created by an older release) keeps reusing its free pages for new rows, and
// the README tells the operator how to convert it offline.
//
// # Metrics
//
// dispatch24_retention_purged_rows_total{table}, dispatch24_retention_batch_duration_seconds,
// dispatch24_retention_last_purge_duration_seconds, dispatch24_retention_last_success_timestamp_seconds
// and dispatch24_retention_oldest_age_seconds{table}: the age of the oldest finished delivery
// and of the oldest published event, as the last purge found them (attempts go with their
// delivery). Only the lease holder's move.
package retention
