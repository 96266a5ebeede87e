package submission

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/trace/noop"

	"github.com/dispatch24/dispatch24/internal/httpapi"
	"github.com/dispatch24/dispatch24/internal/outbox"
	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/storetest"
	"github.com/dispatch24/dispatch24/pkg/events"
)

// recordingOutbox stores events like the relay does and remembers what was notified.
type recordingOutbox struct {
	mu       sync.Mutex
	notified []outbox.Entry
}

func (o *recordingOutbox) Add(ctx context.Context, tx store.Executor, entries []outbox.Entry) error {
	return outbox.Insert(ctx, tx, o.ReservedUntil(), entries)
}

// ReservedUntil is no reservation: the events are free for any sweep.
func (o *recordingOutbox) ReservedUntil() time.Time { return time.Time{} }

func (o *recordingOutbox) Notify(entries []outbox.Entry) {
	o.mu.Lock()
	o.notified = append(o.notified, entries...)
	o.mu.Unlock()
}

func newPending(id, idemKey, sessionID string) *pending {
	it := &pending{id: id, surveyID: "s", userID: "u", idemKey: idemKey, sessionID: sessionID,
		submittedAt: time.Now(), done: make(chan struct{})}
	// As Submit does on SQLite; PostgreSQL's pipeline reads respondents itself.
	it.respondent = &store.Submitter{}
	it.body = storedSubmission(id, "s", "u", it.submittedAt, []byte(`{"meals":[]}`), false)
	ev := events.Event{ID: events.NewID(), Type: events.TypeSessionSubmitted, Timestamp: it.submittedAt, SurveyID: "s", SubmissionID: id, Data: it.body}
	payload, _ := ev.Marshal()
	it.entry = outbox.Entry{SurveyID: "s", CreatedAt: it.submittedAt, Message: events.Message{
		ID: ev.ID, Type: ev.Type, Subject: events.Subject("s", ev.Type), Payload: payload}}
	return it
}

// One failing submission does not fail its batch: the batch is retried one by one. Repeats
// inside a batch follow the first.
func TestCommitterBatchFailureAndRepeats(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := store.Micros(time.Now())
		for _, q := range []string{
			`INSERT INTO surveys (id, name, created_at, updated_at) VALUES ('s', 's', $1, $1)`,
			`INSERT INTO respondents (id, survey_id, username, auth_token, created_at, updated_at) VALUES ('u', 's', 'u', 't', $1, $1)`,
			`INSERT INTO submissions (id, survey_id, user_id, body, submitted_at) VALUES ('sub_taken', 's', 'u', '{}', $1)`,
		} {
			if _, err := db.Exec(ctx, q, now); err != nil {
				t.Fatal(err)
			}
		}
		ob := &recordingOutbox{}
		c := &committer{db: db, outbox: ob, tracer: noop.NewTracerProvider().Tracer(""), maxBatch: 16, writers: 1}

		a, b := newPending("sub_a", "k-a", "ses-1"), newPending("sub_b", "k-b", "")
		aAgain := newPending("sub_a2", "k-a", "")      // same key as a
		bySession := newPending("sub_a3", "", "ses-1") // same session as a
		// Its id is taken, so the insert skips it and no earlier submission explains why: the
		// batch's transaction fails.
		broken := newPending("sub_taken", "k-c", "")
		batch := []*pending{a, b, aAgain, bySession, broken}
		c.write(batch)
		for _, it := range batch {
			<-it.done
		}
		if a.err != nil || b.err != nil || !a.created || !b.created || a.resultID != "sub_a" || b.resultID != "sub_b" {
			t.Fatalf("a %+v b %+v", a, b)
		}
		for _, it := range []*pending{aAgain, bySession} {
			if it.err != nil || it.created || it.resultID != "sub_a" || it.respondent == nil {
				t.Fatalf("repeat %+v", it)
			}
		}
		if broken.err == nil {
			t.Fatal("the broken submission succeeded")
		}
		var subs, evs int
		if err := db.QueryRow(ctx, "SELECT count(*) FROM submissions").Scan(&subs); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRow(ctx, "SELECT count(*) FROM events").Scan(&evs); err != nil {
			t.Fatal(err)
		}
		if subs != 3 || evs != 2 || len(ob.notified) != 2 {
			t.Fatalf("%d submissions, %d events, %d notified", subs, evs, len(ob.notified))
		}
	})
}

// A writer beyond the first starts only when extraWriterMin submissions wait; the first
// starts for any.
func TestCommitterMayLead(t *testing.T) {
	c := &committer{writers: 2}
	queue := func(n int) {
		c.queue = c.queue[:0]
		for i := 0; i < n; i++ {
			c.queue = append(c.queue, &pending{})
		}
	}
	cases := []struct {
		active, queued int
		want           bool
	}{
		{0, 1, true},
		{1, 1, false},
		{1, extraWriterMin - 1, false},
		{1, extraWriterMin, true},
		{2, 100, false}, // every slot taken
	}
	for _, tc := range cases {
		c.active = tc.active
		queue(tc.queued)
		if got := c.mayLead(); got != tc.want {
			t.Errorf("active %d, queued %d: mayLead = %v, want %v", tc.active, tc.queued, got, tc.want)
		}
	}
}

// Many concurrent submitters with several writer slots: every submission commits once, with
// its event, whether it waited for a running writer's next batch or started a writer.
func TestCommitterConcurrentWriters(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := store.Micros(time.Now())
		for _, q := range []string{
			`INSERT INTO surveys (id, name, created_at, updated_at) VALUES ('s', 's', $1, $1)`,
			`INSERT INTO respondents (id, survey_id, username, auth_token, created_at, updated_at) VALUES ('u', 's', 'u', 't', $1, $1)`,
		} {
			if _, err := db.Exec(ctx, q, now); err != nil {
				t.Fatal(err)
			}
		}
		ob := &recordingOutbox{}
		writers := 3
		if !db.Driver.Submissions().ConcurrentCommits() {
			writers = 1
		}
		c := &committer{db: db, outbox: ob, tracer: noop.NewTracerProvider().Tracer(""), maxBatch: 8, writers: writers}
		const n = 60
		var wg sync.WaitGroup
		items := make([]*pending, n)
		for i := range items {
			items[i] = newPending(fmt.Sprintf("sub_%02d", i), fmt.Sprintf("k-%02d", i), "")
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := c.submit(ctx, items[i]); err != nil {
					t.Errorf("submission %d: %v", i, err)
				}
			}()
		}
		wg.Wait()
		for i, it := range items {
			if !it.created || it.resultID != it.id {
				t.Errorf("submission %d: created %v, id %q", i, it.created, it.resultID)
			}
		}
		var subs, evs int
		if err := db.QueryRow(ctx, "SELECT count(*) FROM submissions").Scan(&subs); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRow(ctx, "SELECT count(*) FROM events").Scan(&evs); err != nil {
			t.Fatal(err)
		}
		if subs != n || evs != n || len(ob.notified) != n {
			t.Fatalf("%d submissions, %d events, %d notified; want %d of each", subs, evs, len(ob.notified), n)
		}
		// The last writer gives its slot back just after answering its batch.
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
			c.mu.Lock()
			active, queued := c.active, len(c.queue)
			c.mu.Unlock()
			if active == 0 && queued == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("after the last commit: %d writers active, %d queued", active, queued)
			}
		}
	})
}

// A mixed batch on PostgreSQL, whose pipeline reads the respondents itself: respondents that
// are gone or disabled are refused (their submissions and sessions untouched), a repeat of a
// committed submission answers with its id, a repeat nothing explains fails alone, and the
// rest commit with their events (leased for the fast path) and close their sessions.
func TestCommitterPostgresMixedBatch(t *testing.T) {
	t.Parallel()
	db := storetest.Postgres(t)
	ctx := context.Background()
	now := store.Micros(time.Now())
	for _, q := range []string{
		`INSERT INTO surveys (id, name, redirect_url, redirect_identifier, created_at, updated_at)
			VALUES ('s', 's', 'https://example.org/done?u={identifier}', 'username', $1, $1)`,
		`INSERT INTO respondents (id, survey_id, username, auth_token, created_at, updated_at) VALUES ('u', 's', 'user-u', 't-u', $1, $1)`,
		`INSERT INTO respondents (id, survey_id, username, auth_token, disabled, created_at, updated_at) VALUES ('d', 's', 'user-d', 't-d', TRUE, $1, $1)`,
		`INSERT INTO survey_sessions (id, survey_id, user_id, status, created_at, updated_at) VALUES ('ses-u', 's', 'u', 'open', $1, $1)`,
		`INSERT INTO survey_sessions (id, survey_id, user_id, status, created_at, updated_at) VALUES ('ses-d', 's', 'd', 'open', $1, $1)`,
		`INSERT INTO submissions (id, survey_id, user_id, idempotency_key, body, submitted_at) VALUES ('sub_earlier', 's', 'u', 'k-earlier', '{}', $1)`,
		`INSERT INTO submissions (id, survey_id, user_id, body, submitted_at) VALUES ('sub_taken', 's', 'u', '{}', $1)`,
	} {
		if _, err := db.Exec(ctx, q, now); err != nil {
			t.Fatal(err)
		}
	}
	lease := time.Now().Add(time.Minute).Truncate(time.Microsecond)
	ob := &leasingOutbox{lease: lease}
	c := &committer{db: db, outbox: ob, tracer: noop.NewTracerProvider().Tracer(""), maxBatch: 16, writers: 1}

	mk := func(id, userID, key, session string) *pending {
		it := newPending(id, key, session)
		it.userID, it.respondent = userID, nil // the batch reads respondents itself
		return it
	}
	fresh := mk("sub_new", "u", "k-new", "ses-u")
	repeat := mk("sub_again", "u", "k-earlier", "")
	unexplained := mk("sub_taken", "u", "k-taken", "") // its id exists under no key of its own
	disabled := mk("sub_d", "d", "k-d", "ses-d")
	gone := mk("sub_gone", "nobody", "k-g", "")
	batch := []*pending{fresh, repeat, unexplained, disabled, gone}
	c.write(batch)
	for _, it := range batch {
		<-it.done
	}

	if fresh.err != nil || !fresh.created || fresh.resultID != "sub_new" {
		t.Fatalf("fresh %+v", fresh)
	}
	if got := followUpURL(fresh.respondent, "u"); got != "https://example.org/done?u=user-u" {
		t.Errorf("follow-up URL %q", got)
	}
	if repeat.err != nil || repeat.created || repeat.resultID != "sub_earlier" {
		t.Fatalf("repeat %+v", repeat)
	}
	if unexplained.err == nil || unexplained.created {
		t.Fatalf("unexplained %+v", unexplained)
	}
	for _, tc := range []struct {
		it   *pending
		want string
	}{{disabled, "account_disabled"}, {gone, "survey_not_found"}} {
		if !errorHasCode(tc.it.err, tc.want) || tc.it.created {
			t.Errorf("%s: err %v, want %s", tc.it.id, tc.it.err, tc.want)
		}
	}

	var subs int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM submissions`).Scan(&subs); err != nil {
		t.Fatal(err)
	}
	if subs != 3 { // sub_earlier, sub_taken, sub_new
		t.Fatalf("%d submissions, want 3", subs)
	}
	var (
		evID     string
		claimed  int64
		nEvents  int
		sesU     string
		sesD     string
		notified = len(ob.notified)
	)
	if err := db.QueryRow(ctx, `SELECT count(*), min(id), min(claimed_until) FROM events`).Scan(&nEvents, &evID, &claimed); err != nil {
		t.Fatal(err)
	}
	if nEvents != 1 || evID != fresh.entry.Message.ID || claimed != store.Micros(lease) {
		t.Fatalf("%d events (%s, claimed until %d), want only %s claimed until %d", nEvents, evID, claimed, fresh.entry.Message.ID, store.Micros(lease))
	}
	if notified != 1 {
		t.Fatalf("%d entries notified, want 1", notified)
	}
	if err := db.QueryRow(ctx, `SELECT (SELECT status FROM survey_sessions WHERE id = 'ses-u'), (SELECT status FROM survey_sessions WHERE id = 'ses-d')`).Scan(&sesU, &sesD); err != nil {
		t.Fatal(err)
	}
	if sesU != "submitted" || sesD != "open" {
		t.Fatalf("sessions: ses-u %s, ses-d %s; want submitted, open", sesU, sesD)
	}
}

// leasingOutbox is recordingOutbox with a fast-path lease, as the relay writes events.
type leasingOutbox struct {
	recordingOutbox
	lease time.Time
}

func (o *leasingOutbox) Add(ctx context.Context, tx store.Executor, entries []outbox.Entry) error {
	return outbox.Insert(ctx, tx, o.lease, entries)
}

func (o *leasingOutbox) ReservedUntil() time.Time { return o.lease }

func errorHasCode(err error, code string) bool {
	var p *httpapi.Problem
	return errors.As(err, &p) && p.Code == code
}
