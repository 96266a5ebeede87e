package submission_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/storetest"
	"github.com/dispatch24/dispatch24/pkg/events"
)

// streamEvents decodes every event in the stream, checking each is in the stream once and
// byte for byte the envelope stored in the outbox.
func streamEvents(t *testing.T, b *bundle, want int) []events.Event {
	t.Helper()
	b.waitPublished(t)
	msgs := b.nats.WaitMessages(t, want)
	if len(msgs) != want {
		t.Fatalf("stream holds %d events, want %d", len(msgs), want)
	}
	var out []events.Event
	seen := map[string]bool{}
	for _, m := range msgs {
		var ev events.Event
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			t.Fatal(err)
		}
		if seen[ev.ID] || m.Header.Get(jetstream.MsgIDHeader) != ev.ID {
			t.Fatalf("event %s: duplicate or wrong Nats-Msg-Id %q", ev.ID, m.Header.Get(jetstream.MsgIDHeader))
		}
		seen[ev.ID] = true
		// The payload is the envelope exactly as events.Event.Marshal writes it.
		again := ev
		if b, err := again.Marshal(); err != nil || !bytes.Equal(b, m.Data) {
			t.Fatalf("event %s: payload is not events.Event.Marshal's encoding:\n%s\n%s", ev.ID, m.Data, b)
		}
		// What the store gives back (a submission's event stores its data once, in the
		// submission) is what was published, byte for byte.
		rows, err := b.db.Driver.Events().ByID(context.Background(), []string{ev.ID})
		if err != nil || len(rows) != 1 {
			t.Fatalf("event %s: %d rows, %v", ev.ID, len(rows), err)
		}
		if stored := rows[0].Payload; !bytes.Equal(stored, m.Data) || m.Subject != events.Subject(ev.SurveyID, ev.Type) {
			t.Fatalf("event %s: stream message differs from the outbox row", ev.ID)
		}
		out = append(out, ev)
	}
	return out
}

func TestSessionsAndSubmission(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		b := setup(t, db)
		var s1, s2, s3 struct {
			SessionID string `json:"sessionId"`
		}
		res := b.do(t, "POST", "/api/surveys/survey-a/session", "alice", "", nil)
		if res.status != http.StatusCreated {
			t.Fatalf("start: %d %s", res.status, res.body)
		}
		res.decode(t, &s1)
		// Starting again cancels the session left open.
		b.do(t, "POST", "/api/surveys/survey-a/session", "alice", "", nil).decode(t, &s2)
		if s1.SessionID == "" || s2.SessionID == s1.SessionID {
			t.Fatalf("session ids %q %q", s1.SessionID, s2.SessionID)
		}
		if res := b.do(t, "DELETE", "/api/surveys/survey-a/session", "alice", "", nil); res.status != http.StatusNoContent {
			t.Fatalf("cancel: %d %s", res.status, res.body)
		}
		if res := b.do(t, "DELETE", "/api/surveys/survey-a/session", "alice", "", nil); res.status != http.StatusNotFound {
			t.Fatalf("cancel with none open: %d %s", res.status, res.body)
		}
		b.do(t, "POST", "/api/surveys/survey-a/session", "alice", "", nil).decode(t, &s3)

		body := recall(s3.SessionID)
		res = b.do(t, "POST", "/api/surveys/survey-a/submission", "alice", body, nil)
		if res.status != http.StatusCreated {
			t.Fatalf("submit: %d %s", res.status, res.body)
		}
		var sub struct {
			SubmissionID string `json:"submissionId"`
			FollowUpURL  string `json:"followUpUrl"`
		}
		res.decode(t, &sub)
		if sub.SubmissionID == "" || sub.FollowUpURL != "https://example.org/done?pid=P+alice%261" {
			t.Fatalf("submission %+v", sub)
		}
		if n := b.count(t, "SELECT count(*) FROM survey_sessions WHERE id = $1 AND status = 'submitted'", s3.SessionID); n != 1 {
			t.Fatal("the submission did not close its session")
		}
		if n := b.count(t, "SELECT count(*) FROM survey_sessions WHERE status = 'open'"); n != 0 {
			t.Fatalf("%d sessions left open", n)
		}

		// The stored submission keeps the recall as sent, compacted as the event carries it:
		// the same JSON, and the very bytes of the event's data, which the event's row does
		// not store again.
		var stored []byte
		if err := db.QueryRow(context.Background(), "SELECT body FROM submissions WHERE id = $1", sub.SubmissionID).Scan(&stored); err != nil {
			t.Fatal(err)
		}
		compact, err := json.Marshal(json.RawMessage(body))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasSuffix(stored, []byte(`"recall":`+string(compact)+`}`)) || !bytes.HasPrefix(stored, []byte(`{"id":"`+sub.SubmissionID+`","surveyId":"survey-a","userId":"u-alice","submissionTime":"`)) {
			t.Fatalf("stored submission %s", stored)
		}
		var rowPayload []byte
		if err := db.QueryRow(context.Background(), "SELECT payload FROM events WHERE data_submission_id = $1", sub.SubmissionID).Scan(&rowPayload); err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(rowPayload, []byte(`"data"`)) || len(rowPayload) > 1024 {
			t.Fatalf("the event's row stores its data again: %s", rowPayload)
		}

		evs := streamEvents(t, b, 6)
		var types []string
		for _, ev := range evs {
			types = append(types, ev.Type)
			if ev.SurveyID != "survey-a" || ev.UserID != "u-alice" || ev.Username != "alice" || ev.SessionID == "" {
				t.Errorf("event %+v", ev)
			}
			if (ev.Type == events.TypeSessionSubmitted) != (ev.Data != nil) {
				t.Errorf("event %s of type %s: data %s", ev.ID, ev.Type, ev.Data)
			}
		}
		want := []string{events.TypeSessionStarted, events.TypeSessionCancelled, events.TypeSessionStarted,
			events.TypeSessionCancelled, events.TypeSessionStarted, events.TypeSessionSubmitted}
		if strings.Join(types, ",") != strings.Join(want, ",") {
			t.Fatalf("event types %v, want %v", types, want)
		}
		last := evs[5]
		if last.SubmissionID != sub.SubmissionID || last.SessionID != s3.SessionID {
			t.Fatalf("submitted event %+v", last)
		}
		var data struct {
			ID, SurveyID, UserID, SubmissionTime string
			Recall                               json.RawMessage
		}
		if err := json.Unmarshal(last.Data, &data); err != nil {
			t.Fatal(err)
		}
		if data.ID != sub.SubmissionID || data.SurveyID != "survey-a" || data.UserID != "u-alice" || data.SubmissionTime == "" {
			t.Fatalf("event data %s", last.Data)
		}
		var gotRecall, wantRecall any
		_ = json.Unmarshal(data.Recall, &gotRecall)
		_ = json.Unmarshal([]byte(body), &wantRecall)
		if fmt.Sprint(gotRecall) != fmt.Sprint(wantRecall) {
			t.Fatalf("event recall %s, want %s", data.Recall, body)
		}
		if !bytes.Equal(last.Data, stored) {
			t.Fatalf("event data\n%s\nis not the stored submission\n%s", last.Data, stored)
		}
	})
}

// Fifty concurrent copies of one submission (same Idempotency-Key) make one submission and
// one event, and all get the same answer; the same sessionId counts as the same submission.
func TestSubmissionIdempotent(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		b := setup(t, db)
		const n = 50
		ids := make([]string, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res := b.do(t, "POST", "/api/surveys/survey-a/submission", "bob", recall(""), map[string]string{"Idempotency-Key": "k-1"})
				if res.status != http.StatusCreated {
					t.Errorf("submit: %d %s", res.status, res.body)
					return
				}
				var sub struct{ SubmissionID string }
				res.decode(t, &sub)
				ids[i] = sub.SubmissionID
			}()
		}
		wg.Wait()
		for _, id := range ids {
			if id != ids[0] || id == "" {
				t.Fatalf("answers differ: %v", ids)
			}
		}
		if c := b.count(t, "SELECT count(*) FROM submissions"); c != 1 {
			t.Fatalf("%d submissions", c)
		}
		streamEvents(t, b, 1)

		// The same session, under another key or none, repeats it too; another key without a
		// session is a new submission; another respondent's key is their own.
		bySession := func(key string) string {
			h := map[string]string{}
			if key != "" {
				h["Idempotency-Key"] = key
			}
			res := b.do(t, "POST", "/api/surveys/survey-a/submission", "bob", recall("ses-x"), h)
			if res.status != http.StatusCreated {
				t.Fatalf("submit: %d %s", res.status, res.body)
			}
			var sub struct{ SubmissionID string }
			res.decode(t, &sub)
			return sub.SubmissionID
		}
		first := bySession("k-2")
		if first == ids[0] || bySession("k-3") != first || bySession("") != first {
			t.Fatal("a repeated sessionId made a new submission")
		}
		other := b.do(t, "POST", "/api/surveys/survey-a/submission", "alice", recall(""), map[string]string{"Idempotency-Key": "k-1"})
		if other.status != http.StatusCreated || bytes.Contains(other.body, []byte(ids[0])) {
			t.Fatalf("another respondent's submission: %d %s", other.status, other.body)
		}
		if c := b.count(t, "SELECT count(*) FROM submissions"); c != 3 {
			t.Fatalf("%d submissions, want 3", c)
		}
		streamEvents(t, b, 3)
		if got := testutilCounter(t, b); got != 3 {
			t.Fatalf("submissions metric %v, want 3", got)
		}
	})
}

func testutilCounter(t *testing.T, b *bundle) float64 {
	t.Helper()
	mfs, err := b.metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "dispatch24_submissions_total" {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	return 0
}

// Bad requests get 4xx and write nothing.
func TestSubmissionRejected(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		b := setup(t, db)
		big := `{"startTime":"2026-11-23T08:00:00Z","endTime":"2026-11-23T08:30:00Z","meals":[],"pad":"` +
			strings.Repeat("x", 1<<20) + `"}`
		tests := []struct {
			name, path, token, body string
			header                  map[string]string
			status                  int
			code                    string
		}{
			{"malformed", "/api/surveys/survey-a/submission", "alice", `{"startTime":`, nil, 400, "malformed_json"},
			{"empty", "/api/surveys/survey-a/submission", "alice", ``, nil, 400, "malformed_json"},
			{"invalid", "/api/surveys/survey-a/submission", "alice", `{"meals":{}}`, nil, 400, "validation_failed"},
			{"oversized", "/api/surveys/survey-a/submission", "alice", big, nil, 413, "body_too_large"},
			{"content type", "/api/surveys/survey-a/submission", "alice", recall(""), map[string]string{"Content-Type": "text/plain"}, 415, "unsupported_media_type"},
			{"idempotency key", "/api/surveys/survey-a/submission", "alice", recall(""), map[string]string{"Idempotency-Key": "a b"}, 400, "validation_failed"},
			{"other survey", "/api/surveys/survey-b/submission", "alice", recall(""), nil, 404, "survey_not_found"},
			{"other survey session", "/api/surveys/survey-b/session", "alice", "", nil, 404, "survey_not_found"},
			{"unknown survey", "/api/surveys/nope/submission", "carol", recall(""), nil, 404, "survey_not_found"},
			{"global account", "/api/surveys/survey-a/submission", "admin", recall(""), nil, 403, "forbidden"},
			{"no token", "/api/surveys/survey-a/submission", "", recall(""), nil, 401, "unauthenticated"},
			{"disabled", "/api/surveys/survey-a/submission", "dave", recall(""), nil, 403, "account_disabled"},
			{"disabled session", "/api/surveys/survey-a/session", "dave", "", nil, 403, "account_disabled"},
			{"deleted respondent", "/api/surveys/survey-a/submission", "ghost", recall(""), nil, 404, "survey_not_found"},
		}
		for _, tc := range tests {
			res := b.do(t, "POST", tc.path, tc.token, tc.body, tc.header)
			var p struct{ Code string }
			res.decode(t, &p)
			if res.status != tc.status || p.Code != tc.code {
				t.Errorf("%s: %d %s, want %d %s", tc.name, res.status, p.Code, tc.status, tc.code)
			}
		}
		if n := b.count(t, "SELECT (SELECT count(*) FROM submissions) + (SELECT count(*) FROM events) + (SELECT count(*) FROM survey_sessions)"); n != 0 {
			t.Fatalf("rejected requests wrote %d rows", n)
		}
	})
}

// With NATS down, submissions are still accepted; once NATS is back every event reaches the
// stream exactly once.
func TestSubmissionDuringNATSOutage(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		b := setup(t, db)
		b.nats.Stop()
		const n = 20
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res := b.do(t, "POST", "/api/surveys/survey-a/submission", "alice", recall(fmt.Sprintf("s-%d", i)), nil)
				if res.status != http.StatusCreated {
					t.Errorf("submit while NATS is down: %d %s", res.status, res.body)
				}
			}()
		}
		wg.Wait()
		b.nats.Restart()
		evs := streamEvents(t, b, n)
		for _, ev := range evs {
			if ev.Type != events.TypeSessionSubmitted {
				t.Fatalf("event %+v", ev)
			}
		}
	})
}

// Every event carries the webhooks version its request read (CONTRACT §8: a webhook changed
// before a submission is seen by its event), in the outbox row and in the stream message.
func TestEventsCarryWebhooksVersion(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		b := setup(t, db)
		ctx := context.Background()
		// change registers a webhook, which moves the version, and returns the new version.
		change := func() int64 {
			t.Helper()
			if _, err := db.Exec(ctx, `INSERT INTO webhooks (id, survey_id, url, events, secret, created_at, updated_at)
				VALUES ($1, 'survey-a', 'https://example.org/h', 'survey.session.submitted', 'whsec_x', 1, 1)`,
				fmt.Sprintf("wh-%d", b.count(t, "SELECT count(*) FROM webhooks"))); err != nil {
				t.Fatal(err)
			}
			var v int64
			if err := db.QueryRow(ctx, "SELECT version FROM webhooks_version").Scan(&v); err != nil {
				t.Fatal(err)
			}
			return v
		}
		want := map[string]int64{} // event type → version
		want[events.TypeSessionStarted] = change()
		if res := b.do(t, "POST", "/api/surveys/survey-a/session", "alice", "", nil); res.status != http.StatusCreated {
			t.Fatalf("start: %d %s", res.status, res.body)
		}
		want[events.TypeSessionCancelled] = change()
		if res := b.do(t, "DELETE", "/api/surveys/survey-a/session", "alice", "", nil); res.status != http.StatusNoContent {
			t.Fatalf("cancel: %d %s", res.status, res.body)
		}
		want[events.TypeSessionSubmitted] = change()
		if res := b.do(t, "POST", "/api/surveys/survey-a/submission", "alice", recall(""), nil); res.status != http.StatusCreated {
			t.Fatalf("submit: %d %s", res.status, res.body)
		}
		b.waitPublished(t)
		msgs := b.nats.WaitMessages(t, 3)
		if len(msgs) != 3 {
			t.Fatalf("%d messages, want 3", len(msgs))
		}
		for _, m := range msgs {
			typ := m.Header.Get(events.HeaderEventType)
			var stored int64
			if err := db.QueryRow(ctx, "SELECT webhooks_version FROM events WHERE id = $1",
				m.Header.Get(jetstream.MsgIDHeader)).Scan(&stored); err != nil {
				t.Fatal(err)
			}
			if got := m.Header.Get(events.HeaderWebhooksVersion); stored != want[typ] || got != fmt.Sprint(want[typ]) {
				t.Errorf("%s: stored version %d, header %q, want %d", typ, stored, got, want[typ])
			}
		}
	})
}

// TestConcurrentSessionStarts: many starts of the same respondent at once each answer 201 or
// a 409 to retry, never a 500, and leave one session open.
func TestConcurrentSessionStarts(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		b := setup(t, db)
		var (
			wg       sync.WaitGroup
			mu       sync.Mutex
			statuses = map[int]int{}
		)
		for range 24 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res := b.do(t, "POST", "/api/surveys/survey-a/session", "bob", "", nil)
				mu.Lock()
				statuses[res.status]++
				mu.Unlock()
			}()
		}
		wg.Wait()
		if statuses[http.StatusCreated]+statuses[http.StatusConflict] != 24 || statuses[http.StatusCreated] == 0 {
			t.Fatalf("statuses %v, want only 201 and 409", statuses)
		}
		if n := b.count(t, "SELECT count(*) FROM survey_sessions WHERE user_id = 'u-bob' AND status = 'open'"); n != 1 {
			t.Fatalf("%d open sessions", n)
		}
		t.Logf("statuses %v", statuses)
	})
}
