package main

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/dispatch24/dispatch24/pkg/events"
)

type checked struct {
	succeeded, attempts, attempts2xx int64
	// parked: deliveries whose attempt started a second or more (DISPATCH's ParkDelay) after
	// the dispatcher created them: parked for a congested endpoint and sent by the retry
	// scheduler from the store, not straight from the stream.
	parked      int64
	maxInternal time.Duration
}

func cores() int { return runtime.NumCPU() }

// verifyCounts checks, exactly, that what was measured happened: every accepted submission
// is stored with one published event; PostgreSQL holds one succeeded delivery with a 2xx
// attempt row for every (event, endpoint) and nothing else; and the receiver saw every
// submission at every endpoint, with every verified request passing.
func (w *world) verifyCounts(ctx context.Context, r *result) error {
	n := int64(len(r.load.accepted))
	k := int64(w.o.endpoints)
	var errs []error
	check := func(what string, got, want int64) {
		if got != want {
			errs = append(errs, fmt.Errorf("%s: %d, want %d", what, got, want))
		}
	}
	if r.load.errors > 0 {
		errs = append(errs, fmt.Errorf("%d submissions were not accepted", r.load.errors))
	}
	check("accepted submissions", n, int64(w.o.events))

	// The relay marks events published after JetStream's ack, in its own time: a delivery can
	// be recorded before its event's mark is committed. Wait for the marks (not timed).
	if err := w.waitOutbox(ctx); err != nil {
		return err
	}
	var subs, evs, published int64
	if err := w.db.QueryRow(ctx, "SELECT count(*) FROM submissions WHERE survey_id = $1", surveyID).Scan(&subs); err != nil {
		return err
	}
	check("submissions stored", subs, n)
	if err := w.db.QueryRow(ctx, `SELECT count(*), count(published_at) FROM events WHERE survey_id = $1 AND type = $2`,
		surveyID, events.TypeSessionSubmitted).Scan(&evs, &published); err != nil {
		return err
	}
	check("submitted events stored", evs, n)
	check("submitted events published", published, n)

	var total, pairs int64
	if err := w.db.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE status = 'succeeded'),
		count(DISTINCT (event_id, webhook_id)) FROM deliveries WHERE survey_id = $1`, surveyID).Scan(&total, &r.checked.succeeded, &pairs); err != nil {
		return err
	}
	check("deliveries", total, n*k)
	check("succeeded deliveries", r.checked.succeeded, n*k)
	check("distinct (event, endpoint) deliveries", pairs, n*k)
	if err := w.db.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE a.status_code BETWEEN 200 AND 299 AND a.error = '')
		FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id WHERE d.survey_id = $1`, surveyID).Scan(&r.checked.attempts, &r.checked.attempts2xx); err != nil {
		return err
	}
	check("2xx attempt rows", r.checked.attempts2xx, n*k)
	var maxMicros int64
	if err := w.db.QueryRow(ctx, `SELECT count(*) FILTER (WHERE a.started_at - d.created_at >= 1000000), coalesce(max(a.started_at - d.created_at), 0)
		FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id WHERE d.survey_id = $1 AND a.n = 1`, surveyID).Scan(&r.checked.parked, &maxMicros); err != nil {
		return err
	}
	r.checked.maxInternal = time.Duration(maxMicros) * time.Microsecond
	// Every (submitted event, endpoint) pair has a succeeded delivery with a 2xx attempt row.
	var missing int64
	if err := w.db.QueryRow(ctx, `SELECT count(*) FROM events e CROSS JOIN webhooks w
		WHERE e.survey_id = $1 AND w.survey_id = $1 AND e.type = $2 AND NOT EXISTS (
			SELECT 1 FROM deliveries d JOIN delivery_attempts a ON a.delivery_id = d.id
			WHERE d.event_id = e.id AND d.webhook_id = w.id AND d.status = 'succeeded'
			  AND a.status_code BETWEEN 200 AND 299 AND a.error = '')`, surveyID, events.TypeSessionSubmitted).Scan(&missing); err != nil {
		return err
	}
	check("(event, endpoint) pairs without a succeeded delivery and 2xx attempt row", missing, 0)
	var hooks int64
	if err := w.db.QueryRow(ctx, "SELECT count(*) FROM webhooks WHERE survey_id = $1", surveyID).Scan(&hooks); err != nil {
		return err
	}
	check("webhooks", hooks, k)
	// The submissions the events carry are exactly the ones the clients got 201s for.
	var unknown int64
	ids := make([]string, 0, n)
	for _, s := range r.load.accepted {
		ids = append(ids, s.id)
	}
	if err := w.db.QueryRow(ctx, `SELECT count(*) FROM events WHERE survey_id = $1 AND type = $2
		AND NOT (payload->>'submissionId' = ANY($3))`, surveyID, events.TypeSessionSubmitted, ids).Scan(&unknown); err != nil {
		return err
	}
	check("events for submissions no client was answered for", unknown, 0)

	check("distinct webhook-ids at the receiver", w.recv.distinct.Load(), n*k)
	check("receipts missing for accepted submissions", int64(r.lat.missing), 0)
	check("requests rejected by the Verifier", w.recv.rejected.Load(), 0)
	check("malformed requests", w.recv.malformed.Load(), 0)
	if w.o.verify == "all" {
		check("verified requests", w.recv.verified.Load(), w.recv.requests.Load())
	} else if w.o.verify == "sample" && w.recv.verified.Load() == 0 {
		errs = append(errs, errors.New("no request was verified"))
	}
	if p := w.recv.firstRejection.Load(); p != nil {
		errs = append(errs, errors.New("first rejection: "+*p))
	}
	if len(errs) > 0 {
		return fmt.Errorf("the run's counts do not add up:\n%w", errors.Join(errs...))
	}
	return nil
}
