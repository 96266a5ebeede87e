package dispatch

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/pkg/events"
)

// sampleEvent is a submitted event with a recall of about size bytes, as the relay publishes it.
func sampleEvent(tb testing.TB, size int) []byte {
	tb.Helper()
	var foods []string
	for i := 0; len(strings.Join(foods, ",")) < size; i++ {
		foods = append(foods, fmt.Sprintf(`{"code":"F%04d","description":"Food \"%d\" – ü","portionGrams":%d.5,"tags":["a","b"],"extra":null,"ok":true}`, i, i, i))
	}
	recall := `{"startTime":"2026-11-23T08:00:00Z","endTime":"2026-11-23T08:20:00Z","meals":[{"name":"Breakfast","foods":[` + strings.Join(foods, ",") + `]}]}`
	ev := events.Event{ID: events.NewID(), Type: events.TypeSessionSubmitted, Timestamp: time.Now(), SurveyID: "demo-survey",
		SessionID: "ses_1", UserID: "res_1", Username: "r\u00e9sp\"1\\", SubmissionID: "sub_1",
		Data: json.RawMessage(`{"id":"sub_1","surveyId":"demo-survey","userId":"res_1","submissionTime":"2026-11-23T08:20:01Z","recall":` + recall + `}`)}
	b, err := ev.Marshal()
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// The scanner agrees with encoding/json on everything the relay publishes, and on envelopes
// in other key orders, with escapes, nulls, and unknown fields of every JSON kind.
func TestDecodeEnvelopeAgreesWithEncodingJSON(t *testing.T) {
	t.Parallel()
	bodies := [][]byte{
		sampleEvent(t, 100),
		sampleEvent(t, 10<<10),
		[]byte(`{"data":{"a":[1,{"b":"}]\""}]},"surveyId":"s","id":"e\u00e9\n","type":"t","extra":[true,false,null,-1.5e3,"x"],"userId":null}`),
		[]byte(" \t\n{ \"id\" : \"e\" , \"type\":\"t\", \"surveyId\":\"s\\/x\", \"n\": 12 }\r\n"),
		[]byte(`{"id":"e","type":"t","surveyId":"s","id":"second wins"}`),
		[]byte(`{"id":"\ud83d\ude00","type":"t","surveyId":"s","data":"just a string"}`),
	}
	for _, b := range bodies {
		var want envelope
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatalf("encoding/json: %v", err)
		}
		got, err := scanEnvelope(b)
		if err != nil || got != want {
			t.Errorf("scanEnvelope(%.80s…) = %+v, %v; encoding/json: %+v", b, got, err, want)
		}
	}
	for _, bad := range []string{
		``, `null`, `[]`, `"x"`, `{`, `{"id"}`, `{"id":}`, `{"id":"e",}`, `{"id":"e"} x`, `{"id":1}`,
		`{"id":"e","data":{]}`, `{"id":"e","data":[}`, `{"id":"e","data":{"a":"}`, `{"id":"e" "type":"t"}`,
		`{"id":"e","data":tru}`, `{"id":"e","data":}`, `{id:"e"}`, `{"id":"e\x"}`, "{\"id\":\"e\x01\"}",
		`{"id":"e","data":{"a":1}}}`, `{"id":"e","data":[1,2]]}`,
	} {
		if e, err := scanEnvelope([]byte(bad)); err == nil {
			t.Errorf("scanEnvelope(%q) accepted: %+v", bad, e)
		}
	}
}

func BenchmarkDecodeEnvelope(b *testing.B) {
	for _, size := range []int{1 << 10, 10 << 10} {
		body := sampleEvent(b, size)
		subject := events.Subject("demo-survey", events.TypeSessionSubmitted)
		b.Run(fmt.Sprintf("%dKB", size>>10), func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := decodeEnvelope(body, subject, events.TypeSessionSubmitted); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// FuzzScanEnvelope checks the scanner against encoding/json: where encoding/json reads the
// body as an object whose envelope fields are strings or null, the scanner accepts it and
// reads the same values (the last of repeated keys, as encoding/json); the scanner may accept
// more (it checks skipped values only for balance) but never reads a field differently.
func FuzzScanEnvelope(f *testing.F) {
	f.Add(sampleEvent(f, 300))
	f.Add([]byte(`{"id":"e","type":"t","surveyId":"s","data":{"a":["}",{"b":"\\\""}]}}`))
	f.Add([]byte(`{"id":null,"ID":"x","username":"\u00e9\ud800"}`))
	f.Add([]byte(`{"id":"e","data":[1,-2.5e+3,true,false,null]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := scanEnvelope(body)
		var fields map[string]json.RawMessage
		if json.Unmarshal(body, &fields) != nil || fields == nil {
			return // not an object to encoding/json: the scanner may refuse or skip leniently
		}
		want := map[string]string{}
		for _, k := range []string{"id", "type", "surveyId", "sessionId", "userId", "username", "submissionId"} {
			raw, ok := fields[k]
			if !ok || string(raw) == "null" {
				continue
			}
			var v string
			if json.Unmarshal(raw, &v) != nil {
				if err == nil {
					t.Fatalf("accepted %q whose %s is %s", body, k, raw)
				}
				return
			}
			want[k] = v
		}
		if err != nil {
			t.Fatalf("refused an envelope encoding/json reads: %q: %v", body, err)
		}
		have := map[string]string{"id": got.ID, "type": got.Type, "surveyId": got.SurveyID, "sessionId": got.SessionID,
			"userId": got.UserID, "username": got.Username, "submissionId": got.SubmissionID}
		for k, v := range have {
			if v != want[k] {
				t.Fatalf("%q: %s = %q, encoding/json reads %q", body, k, v, want[k])
			}
		}
	})
}
