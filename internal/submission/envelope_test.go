package submission

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/pkg/events"
)

func TestMarshalEnvelope(t *testing.T) {
	t.Parallel()
	recall := []byte("{\n  \"startTime\": \"2026-11-23T08:00:00Z\",\t\"meals\" : [ {\"name\": \"<b>&amp;</b> \u2028\u2029 \\\" \\\\ \\u003c\", \"foods\": [ ] } ]\r\n}")
	at := time.Date(2026, 11, 23, 10, 15, 0, 123456789, time.FixedZone("x", 3600))
	for _, c := range []struct {
		recall  []byte
		compact bool
	}{{recall, false}, {[]byte(`{"meals":[]}`), true}, {nil, false}} {
		ev := events.Event{ID: "evt_1", Type: events.TypeSessionSubmitted, Timestamp: at,
			SurveyID: "s<1>", SessionID: "ses&", UserID: "u", Username: "ü \u2028", SubmissionID: "sub_1"}
		appendData := func(dst []byte) []byte {
			return appendStoredSubmission(dst, "sub_1", "s<1>", "u", at, c.recall, c.compact)
		}
		if c.recall == nil { // an envelope with no fields but its data
			ev = events.Event{}
			appendData = func(dst []byte) []byte { return append(dst, `{"a":1}`...) }
		}
		got, head, data, err := submissionEnvelope(&ev, 16, appendData)
		if err != nil {
			t.Fatal(err)
		}
		if want := appendData(nil); !bytes.Equal(data, want) || !bytes.Equal(ev.Data, want) {
			t.Fatalf("data %s, ev.Data %s, want %s", data, ev.Data, want)
		}
		want, err := ev.Marshal() // with ev.Data, the stored submission
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("envelope\n got %s\nwant %s", got, want)
		}
		// The events table stores head and reads back head joined with the stored body.
		noData := ev
		noData.Data = nil
		if wantHead, _ := noData.Marshal(); !bytes.Equal(head, wantHead) {
			t.Fatalf("head\n got %s\nwant %s", head, wantHead)
		}
		if joined := store.JoinEnvelope(head, data); !bytes.Equal(joined, want) {
			t.Fatalf("joined envelope\n got %s\nwant %s", joined, want)
		}
		// data is capped inside the envelope: appending to it leaves the envelope whole.
		_ = append(data, 'x')
		if !bytes.Equal(got, want) {
			t.Fatalf("appending to data changed the envelope: %s", got)
		}
	}
}

// TestStoredSubmissionIsCompact checks that the stored body is the recall as submitted,
// compacted exactly as encoding/json writes it, so that the envelope can carry it unchanged.
func TestStoredSubmissionIsCompact(t *testing.T) {
	t.Parallel()
	recall := []byte(" {\n  \"a\" : [1, 2.5e3 , true,null], \"s\": \"<x> & \u2028\u2029 \\u003c\\\" \" }\n")
	body := storedSubmission("sub_<1>", "s&", "u", time.Date(2026, 11, 23, 10, 15, 0, 0, time.UTC), recall, false)
	compact, err := json.Marshal(json.RawMessage(body))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(body, compact) {
		t.Fatalf("stored body is not compact\n got %s\nwant %s", body, compact)
	}
	var stored struct {
		ID, SurveyID, UserID string
		Recall               any
	}
	if err := json.Unmarshal(body, &stored); err != nil {
		t.Fatal(err)
	}
	var want any
	if err := json.Unmarshal(recall, &want); err != nil {
		t.Fatal(err)
	}
	if stored.ID != "sub_<1>" || stored.SurveyID != "s&" || stored.UserID != "u" || !reflect.DeepEqual(stored.Recall, want) {
		t.Fatalf("stored %+v, recall %v", stored, want)
	}
}

func FuzzCompactHTML(f *testing.F) {
	f.Add([]byte(validRecall))
	f.Add([]byte("[\"\u2028\", \"\\\"<\", {\"a\" : \"&\\\\\"}, 1.5e3, true, null]"))
	f.Add([]byte("\"\xe2\x80\"  "))
	f.Fuzz(func(t *testing.T, src []byte) {
		if !json.Valid(src) {
			return
		}
		want, err := json.Marshal(json.RawMessage(src))
		if err != nil {
			t.Fatal(err)
		}
		if got := appendCompactHTML(nil, src); !bytes.Equal(got, want) {
			t.Fatalf("compacting %q\n got %q\nwant %q", src, got, want)
		}
	})
}

func BenchmarkMarshalEnvelope(b *testing.B) {
	var buf bytes.Buffer
	for buf.Len() < 10<<10 {
		buf.WriteString(`{"name":"Meal","foods":[{"code":"FOOD1","englishName":"Food","portion":{"method":"as-served","g":40.5}}]},`)
	}
	recall := []byte(`{"meals":[` + buf.String() + `{}]}`)
	at := time.Now()
	ev := events.Event{ID: events.NewID(), Type: events.TypeSessionSubmitted, Timestamp: at, SurveyID: "s",
		UserID: "u", SubmissionID: "sub", Data: storedSubmission("sub", "s", "u", at, recall, true)}
	b.Run("events.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, _ = ev.Marshal()
		}
	})
	for _, compact := range []bool{true, false} {
		b.Run(fmt.Sprintf("submissionEnvelope compact=%v", compact), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				e := ev
				_, _, _, _ = submissionEnvelope(&e, len(recall)+100, func(dst []byte) []byte {
					return appendStoredSubmission(dst, "sub", "s", "u", at, recall, compact)
				})
			}
		})
	}
}

// storedSubmission is appendStoredSubmission into a buffer of its own.
func storedSubmission(id, surveyID, userID string, at time.Time, recall []byte, compact bool) []byte {
	return appendStoredSubmission(nil, id, surveyID, userID, at, recall, compact)
}
