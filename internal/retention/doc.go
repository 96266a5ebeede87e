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
// to publish it. A replay holds the delivery it replays while it inserts the new one
// (store.Deliveries.Hold: on PostgreSQL a FOR SHARE lock, which the purge's SKIP LOCKED passes
// over; on SQLite the write transaction): either the purge took the delivery first and the
// replay answers 410 delivery_purged, or the replay's new pending delivery keeps the event.
// Deleted surveys' tombstones go once deleted before the cutoff: every delivery they cover is
// then older than the cutoff, answered as purged by its age alone.
//
// The purge reads and deletes through the tables' owners (internal/delivery's Store,
// internal/outbox's Archive); the leases table is this package's own.
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
// The purge deletes in batches of at most BatchSize (1,000) deliveries with their attempts,
// oldest first, each its own short transaction, shrinking batches that take over twice
// BatchTarget (25 ms), and pauses after each at least as long as it took: it
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
// Dropping a partition is by far the cheaper delete: BenchmarkPartitionDrop, 1,000,000
// expired deliveries and as many attempts in partitions of their own, DETACH and DROP of both
// in 1.29 s (1.55 million rows/s); the lead's figure under load was 31 ms for 490k rows.
// BenchmarkPurge, the same rows (beside as many live ones) in batches of 1,000 deliveries
// with their attempts: 15,400 rows/s, batches p50 119 ms, max 504 ms; batches of 5,000 ran
// at 23,000 rows/s with p50 409 ms (both on this shared 2-core machine with other
// engineers' PostgreSQL tests running; before each batch started where the last ended, the
// 1,000-row batches grew to 1 s and the whole ran at 11,400 rows/s).
//
// Partitions still lose here:
//   - A partitioned table's primary and unique keys must contain the partition key. The
//     deliveries' key is their id, deterministic (hash of event and endpoint) precisely so
//     that a redelivered message upserts the same row: with (id, updated_at) a redelivery
//     could insert a second row, and the result writes' ON CONFLICT (id) would no longer
//     work. Attempts would need their started_at in their key, and every query by id
//     would visit every partition.
//   - The purge's criterion is the last activity, not the creation: a partition by
//     created_at can only go once none of its rows is pending or recently active (a retried
//     delivery stays pending for the retry schedule's 76 hours; a replayed event's deliveries
//     are new rows), so whole partitions wait for their slowest row, and partitioning by
//     updated_at moves a row between partitions on every update.
//   - Converting the existing tables means rewriting them with new keys under an exclusive
//     lock, and the driver, the deliveries family's queries and their indexes all change.
//
// Batched deletes keep every key and query and need two partial indexes. Their pace is
// enough: a day's expiry at 1,000 submissions/s with one endpoint (86 million deliveries and
// as many attempts) takes about 6 hours at 7,700 rows/s (15,400 while deleting, paused half
// of the time); at the few hundred submissions a minute the service is sized for, minutes. A
// backlog (the first purge after an upgrade) drains at that pace without stalling intake. The cost that
// remains is PostgreSQL's dead rows, which the throttled VACUUM after each purge makes
// reusable (below).
//
// What the purge costs the rest (BenchmarkPurgeUnderWrites: the purger as run, over
// expired deliveries beside as many live ones, while 8 writers commit a delivery and its
// attempt per transaction): on PostgreSQL, 200,000 expired deliveries (400,000 rows) went in
// 108 s including the pauses and the VACUUM (3,700 rows/s), and the writes' p99 was 43 ms
// during the purge against 64 ms without (the machine's noise is larger than the purge's
// effect). On SQLite, whose one writer the batches share with every write, 1,000-delivery
// batches take 45 ms (BenchmarkPurge, 100,000 expired deliveries: 32,000 rows/s; 5,000:
// 248 ms) and the writes' p99 went from 96 to 179 ms; with batches aimed at 25 ms (BatchTarget:
// they shrink while slower) from 87 to 125 ms, the purge going at 11,300 rows/s.
//
// Through the whole pipeline (bench/pipeline -purge, PostgreSQL; 2026-11-30, on this 2-core
// machine shared with three other engineers' builds and tests: 100% busy throughout, load
// average 12–35, so these are what a saturated host shows, not the service's capacity). The
// purger runs on the API's pool during an open-loop load, in 10 s windows with 10 s pauses,
// so that latencies with and without it interleave and the other work falls on both alike:
//   - 60 submissions/s (the rate the machine then kept), 60,000 expired deliveries: 120,000
//     rows in 10.0 s of purging, 11,950 rows/s as run; due → receipt p99 60.8 ms while the
//     purger ran against 84.1 ms between its windows (0.72×) and 633 ms over the rest of the
//     run (other helpers' builds; the noise is far larger than the purge).
//   - 150 submissions/s, 100,000: the pipeline itself fell behind (132 deliveries/s, a
//     backlog of minutes), the purge went at 1,400 rows/s (batches shrank to 240), and p99
//     was 3m54s with the purger running and 3m56s between its windows (0.99×).
//   - 1,000 submissions/s with 1,000,000 expired deliveries, the figure, could not be
//     measured: the machine kept under 200 submissions/s without any purge.
//
// SQLite (BenchmarkPurgeUnderWrites, 100,000 expired deliveries, same sitting, same busy
// machine; the 3 s baseline runs before the purge, not interleaved): with the defaults
// 3,253 rows/s and write p99 222 ms during against 125 ms before (1.78×), then 7,319 rows/s
// and 100 against 78 ms (1.27×); batches aimed at 8 ms with 30 ms pauses: 1,253 rows/s and
// 118 against 346 ms. The purge contends on SQLite's one writer: a commit that arrives
// during a batch waits for it, so the writes' p99 grows by up to a batch's duration (25–50 ms
// aimed at), which the baseline's own swings (78 to 346 ms) hide. The defaults stay.
//
// Commands (BENCH_ROWS sets the expired deliveries, BENCH_STORE one store):
//
//	BENCH_STORE=postgres BENCH_ROWS=1000000 go test -run '^$' -bench 'Purge$|PartitionDrop' -benchtime=1x ./internal/retention/
//	BENCH_STORE=postgres BENCH_ROWS=200000 go test -run '^$' -bench PurgeUnderWrites -benchtime=1x ./internal/retention/
//	BENCH_STORE=sqlite BENCH_ROWS=100000 go test -run '^$' -bench 'Purge$|PurgeUnderWrites' -benchtime=1x ./internal/retention/
//	BENCH_STORE=sqlite BENCH_ROWS=100000 BENCH_BATCH_TARGET=8ms BENCH_PAUSE=30ms go test -run '^$' -bench PurgeUnderWrites -benchtime=1x ./internal/retention/
//	go run ./bench/pipeline -rate 60 -events 16000 -purge 60000 -purge-after 20s -purge-window 10s
//	go run ./bench/pipeline -rate 150 -events 40000 -purge 100000 -purge-after 20s -purge-window 10s
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
// dispatch24_retention_purged_rows_total{table} (deliveries, delivery_attempts, events,
// delivery_tombstones), dispatch24_retention_batch_duration_seconds,
// dispatch24_retention_last_purge_duration_seconds, dispatch24_retention_last_success_timestamp_seconds
// and dispatch24_retention_oldest_age_seconds{table}: the age of the oldest finished delivery
// and of the oldest published event, as the last purge found them (attempts go with their
// delivery). Only the lease holder's move.
package retention
