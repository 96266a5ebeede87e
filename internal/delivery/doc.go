// Package delivery owns webhook deliveries and their attempt log: the deliveries,
// delivery_attempts and replays tables (store.Deliveries), the delivery ids (DeliveryID), and
// the sanitising of stored response bodies (ResponseBodyText). Its Store is the one door to
// those tables: the dispatch engine claims due deliveries and records its results through it
// (behind interfaces the engine declares), and the operations side (CONTRACT section 7) lists
// deliveries with filters and keyset pagination, shows a delivery with its attempt log, and
// replays one delivery or a whole range of them.
//
// A replay never talks to the dispatch engine directly. It inserts new pending deliveries
// (status pending, attempts 0, next_attempt_at now, replay_of the replayed delivery) and the
// engine's retry scheduler picks them up like any due retry.
//
// # Range replays
//
// POST /api/admin/deliveries/replay counts the matching deliveries and records a replay row
// (status running). The Replayer component then enqueues the new deliveries in batches, each
// batch in its own short transaction that also saves a keyset cursor on the replay row, so a
// replay of 100,000 deliveries never holds a large transaction, and a replay interrupted by a
// stop resumes from its cursor when any API process starts again. Several API replicas may run
// the Replayer: on PostgreSQL a batch locks its replay row (FOR UPDATE SKIP LOCKED), so two
// processes never enqueue the same batch.
//
// What a range replay matches: deliveries with the given statuses (default failed; pending is
// refused, as those are still being attempted), created in [since, until) and before the
// replay itself, optionally of one survey, endpoint or event type, whose endpoint still exists
// and is enabled, and that have not been replayed already. The last rule makes a repeated
// range replay send each event to each endpoint once more, not once per earlier replay: it
// replays the newest delivery of each chain of replays.
//
// A replay is completed once all its deliveries are enqueued (enqueued = matched) and none of
// them is pending any more (done = enqueued). While it runs, a second replay with the same
// canonical filter is refused with 409 replay_running.
package delivery
