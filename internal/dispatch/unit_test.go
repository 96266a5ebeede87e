package dispatch

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/pkg/events"
)

func TestRetryPolicy(t *testing.T) {
	t.Parallel()
	p := retryPolicy{schedule: []time.Duration{0, 5 * time.Second, 5 * time.Minute}, jitter: 0.1}
	now := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name       string
		n          int
		retryAfter time.Duration
		ok         bool
		min, max   time.Duration
	}{
		{"after attempt 1, the 5s step ±10%", 1, 0, true, 4500 * time.Millisecond, 5500 * time.Millisecond},
		{"after attempt 2, the 5m step ±10%", 2, 0, true, 270 * time.Second, 330 * time.Second},
		{"Retry-After longer than the step wins", 1, time.Minute, true, time.Minute, time.Minute},
		{"Retry-After shorter than the step loses", 2, time.Second, true, 270 * time.Second, 330 * time.Second},
		{"the last attempt has no next", 3, 0, false, 0, 0},
		{"nor does anything past it", 7, time.Hour, false, 0, 0},
	} {
		for range 50 {
			at, ok := p.next(c.n, now, c.retryAfter)
			if ok != c.ok {
				t.Fatalf("%s: ok = %v", c.name, ok)
			}
			if !ok {
				continue
			}
			if d := at.Sub(now); d < c.min || d > c.max {
				t.Fatalf("%s: next in %v, want %v..%v", c.name, d, c.min, c.max)
			}
		}
	}
	if d := p.delay(1); d != 0 {
		t.Errorf("a zero step is jittered to %v", d)
	}
	if got := p.maxAttempts(); got != 3 {
		t.Errorf("maxAttempts = %d", got)
	}
	// Jitter spreads: 200 draws of a 10s step are not all equal and average near 10s.
	var sum float64
	seen := map[time.Duration]bool{}
	q := retryPolicy{schedule: []time.Duration{0, 10 * time.Second}, jitter: 0.1}
	for range 200 {
		d := q.delay(2)
		seen[d] = true
		sum += d.Seconds()
	}
	if len(seen) < 100 || math.Abs(sum/200-10) > 0.5 {
		t.Errorf("jitter: %d distinct values, mean %.2fs", len(seen), sum/200)
	}
}

func TestDecodeEnvelope(t *testing.T) {
	t.Parallel()
	body := []byte(`{"id":"evt_1","type":"survey.session.submitted","timestamp":"2026-11-23T10:15:00Z","surveyId":"demo",` +
		`"sessionId":"ses","userId":"usr","username":"resp","submissionId":"sub","data":{"huge":[1,2,3]}}`)
	subject := events.Subject("demo", events.TypeSessionSubmitted)
	e, err := decodeEnvelope(body, subject, events.TypeSessionSubmitted)
	if err != nil {
		t.Fatal(err)
	}
	want := envelope{ID: "evt_1", Type: events.TypeSessionSubmitted, SurveyID: "demo", SessionID: "ses", UserID: "usr", Username: "resp", SubmissionID: "sub"}
	if e != want {
		t.Errorf("decoded %+v, want %+v", e, want)
	}
	// The subject and the type header fill in what the body leaves out.
	e, err = decodeEnvelope([]byte(`{"id":"evt_2"}`), subject, events.TypeSessionSubmitted)
	if err != nil || e.SurveyID != "demo" || e.Type != events.TypeSessionSubmitted {
		t.Errorf("decoded %+v, %v", e, err)
	}
	for name, c := range map[string]struct {
		body            string
		subject, header string
	}{
		"not JSON":            {`{"id":`, subject, ""},
		"no id":               {`{"type":"survey.session.submitted","surveyId":"demo"}`, subject, ""},
		"type disagrees":      {`{"id":"e","type":"survey.session.started","surveyId":"demo"}`, subject, events.TypeSessionSubmitted},
		"survey disagrees":    {`{"id":"e","type":"survey.session.submitted","surveyId":"other"}`, subject, ""},
		"subject of the type": {`{"id":"e","type":"survey.session.started","surveyId":"demo"}`, subject, ""},
		"foreign subject":     {`{"id":"e","type":"survey.session.submitted"}`, "elsewhere.demo.survey.session.submitted", ""},
		"no survey anywhere":  {`{"id":"e","type":"survey.session.submitted"}`, "", ""},
		"no type anywhere":    {`{"id":"e","surveyId":"demo"}`, "", ""},
	} {
		if _, err := decodeEnvelope([]byte(c.body), c.subject, c.header); !errors.Is(err, errInvalidEnvelope) {
			t.Errorf("%s: err = %v, want errInvalidEnvelope", name, err)
		}
	}
}

// FuzzDecodeEnvelope feeds message bodies and subjects from the outside world to the decoder:
// it must never panic, and whatever it accepts names an event, a type and a survey that agree
// with the subject.
func FuzzDecodeEnvelope(f *testing.F) {
	f.Add([]byte(`{"id":"evt_1","type":"survey.session.submitted","surveyId":"demo","data":{}}`), "dispatch24.events.demo.survey.session.submitted", "survey.session.submitted")
	f.Add([]byte(`{"id":"evt_1"}`), "dispatch24.events.a.b.c", "b.c")
	f.Add([]byte(`{"id":1}`), "", "")
	f.Add([]byte(`null`), "dispatch24.events..x", "x")
	f.Add([]byte(`{"id":"x","type":"t","surveyId":"s","data":`+"\"\xff\""+`}`), "dispatch24.events.s.t", "")
	f.Fuzz(func(t *testing.T, body []byte, subject, header string) {
		e, err := decodeEnvelope(body, subject, header)
		if err != nil {
			if !errors.Is(err, errInvalidEnvelope) {
				t.Fatalf("error %v does not wrap errInvalidEnvelope", err)
			}
			return
		}
		if e.ID == "" || e.Type == "" || e.SurveyID == "" {
			t.Fatalf("accepted an incomplete envelope %+v", e)
		}
		if header != "" && e.Type != header {
			t.Fatalf("type %q, header %q", e.Type, header)
		}
		if subject != "" && subject != events.Subject(e.SurveyID, e.Type) {
			t.Fatalf("subject %q does not match survey %q and type %q", subject, e.SurveyID, e.Type)
		}
	})
}
