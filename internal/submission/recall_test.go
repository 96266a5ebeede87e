package submission

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/dispatch24/dispatch24/internal/httpapi"
)

const validRecall = `{
  "startTime": "2026-11-23T08:00:00Z",
  "endTime": "2026-11-23T09:20:00.5+01:00",
  "sessionId": "ses-1",
  "uxSessionId": "kept as is",
  "meals": [
    {"name": "Breakfast", "time": "07:30", "foods": [{"code": "TOAST", "portion": {"g": 40}}], "customData": {"a": 1}},
    {"name": "Lunch", "time": {"hours": 12, "minutes": 30}, "foods": []}
  ],
  "customData": {"device": "phone", "note": "<b>&</b> \u00e9"}
}`

func TestParseRecallValid(t *testing.T) {
	t.Parallel()
	rec, err := ParseRecall([]byte(validRecall))
	if err != nil {
		t.Fatal(err)
	}
	if rec.SessionID != "ses-1" || rec.Meals != 2 || string(rec.Raw) != validRecall {
		t.Fatalf("got %+v", rec)
	}
	if !rec.StartTime.Equal(time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)) ||
		!rec.EndTime.Equal(time.Date(2026, 11, 23, 8, 20, 0, 5e8, time.UTC)) {
		t.Fatalf("times %v %v", rec.StartTime, rec.EndTime)
	}
	minimal := `{"startTime":"2026-11-23T08:00:00Z","endTime":"2026-11-23T08:00:00Z","meals":[],"sessionId":null,"customData":null}`
	if _, err := ParseRecall([]byte(minimal)); err != nil {
		t.Fatalf("minimal recall: %v", err)
	}
	escapedKey := `{"start\u0054ime":"2026-11-23T08:00:00Z","endTime":"2026-11-23T09:00:00Z","meals":[{"name":"x","foods":[{}]}]}`
	if _, err := ParseRecall([]byte(escapedKey)); err != nil {
		t.Fatalf("escaped key: %v", err)
	}
}

func TestParseRecallInvalid(t *testing.T) {
	t.Parallel()
	const times = `"startTime":"2026-11-23T08:00:00Z","endTime":"2026-11-23T09:00:00Z"`
	tests := []struct {
		name   string
		body   string
		code   string
		fields []string
	}{
		{"empty", ``, "malformed_json", nil},
		{"truncated", `{"startTime":`, "malformed_json", nil},
		{"trailing", `{` + times + `,"meals":[]} {}`, "malformed_json", nil},
		{"trailing comma", `{` + times + `,"meals":[],}`, "malformed_json", nil},
		{"bad escape", `{` + times + `,"meals":[],"x":"\q"}`, "malformed_json", nil},
		{"control char", "{" + times + `,"meals":[],"x":"a` + "\x01" + `"}`, "malformed_json", nil},
		{"bad number", `{` + times + `,"meals":[],"x":01}`, "malformed_json", nil},
		{"invalid utf8", "{" + times + `,"meals":[],"x":"` + "\xff" + `"}`, "validation_failed", []string{"x"}},
		{"invalid utf8 in a key", "{" + times + `,"meals":[{"name":"a","foods":[{"` + "\xc3\x28" + `":1}]}]}`,
			"validation_failed", []string{"meals[0].foods[0]"}},
		{"invalid utf8, not JSON", "{" + times + `,"meals":[],"x":"` + "\xff" + `}`, "malformed_json", nil},
		{"nul", `{` + times + `,"meals":[{"name":"a\u0000","foods":[{"note":{"deep":["ok","\u0000"]}}]}]}`,
			"validation_failed", []string{"meals[0].name", "meals[0].foods[0].note.deep[1]"}},
		{"nul in a key", `{` + times + `,"meals":[],"customData":{"\u0000":1}}`, "validation_failed", []string{"customData"}},
		{"escaped backslash is no nul", `{` + times + `,"meals":[],"x":"\\u0000"}`, "", nil},
		{"huge number", `{` + times + `,"meals":[],"customData":{"n":1e309}}`, "validation_failed", []string{"customData.n"}},
		{"huge exponent forms", `{` + times + `,"meals":[{"name":"a","foods":[{"a":-1E+309,"b":12.5e400,"c":0.1e-400}]}]}`,
			"validation_failed", []string{"meals[0].foods[0].a", "meals[0].foods[0].b"}},
		{"huge integer", `{` + times + `,"meals":[],"n":` + strings.Repeat("9", 310) + `}`, "validation_failed", []string{"n"}},
		{"largest float", `{` + times + `,"meals":[],"n":1.7976931348623157e308,"m":` + strings.Repeat("9", 300) + `}`, "", nil},
		{"array", `[1,2]`, "validation_failed", []string{"(body)"}},
		{"nothing", `{}`, "validation_failed", []string{"startTime", "endTime", "meals"}},
		{"bad times", `{"startTime":"yesterday","endTime":5,"meals":[]}`, "validation_failed", []string{"startTime", "endTime"}},
		{"end before start", `{"startTime":"2026-11-23T09:00:00Z","endTime":"2026-11-23T08:00:00Z","meals":[]}`,
			"validation_failed", []string{"endTime"}},
		{"session id", `{` + times + `,"meals":[],"sessionId":7}`, "validation_failed", []string{"sessionId"}},
		{"empty session id", `{` + times + `,"meals":[],"sessionId":""}`, "validation_failed", []string{"sessionId"}},
		{"long session id", `{` + times + `,"meals":[],"sessionId":"` + strings.Repeat("x", 129) + `"}`,
			"validation_failed", []string{"sessionId"}},
		{"meals object", `{` + times + `,"meals":{}}`, "validation_failed", []string{"meals"}},
		{"meal shape", `{` + times + `,"meals":[1,{"time":3,"foods":{}},{"name":"","foods":[1,{},"x"],"customData":[]}]}`,
			"validation_failed", []string{"meals[0]", "meals[1].time", "meals[1].foods", "meals[1].name",
				"meals[2].name", "meals[2].foods[0]", "meals[2].foods[2]", "meals[2].customData"}},
		{"custom data", `{` + times + `,"meals":[],"customData":"x"}`, "validation_failed", []string{"customData"}},
		{"duplicate", `{` + times + `,"meals":[],"meals":[]}`, "validation_failed", []string{"meals"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseRecall([]byte(tc.body))
			if tc.code == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var p *httpapi.Problem
			if !errors.As(err, &p) || p.Status != 400 || p.Code != tc.code {
				t.Fatalf("got %v, want 400 %s", err, tc.code)
			}
			var got []string
			for _, f := range p.Errors {
				got = append(got, f.Field)
			}
			if strings.Join(got, " ") != strings.Join(tc.fields, " ") {
				t.Fatalf("fields %v, want %v", got, tc.fields)
			}
		})
	}
}

// syntaxOK reports whether the parser takes b as one JSON value.
func syntaxOK(b []byte) bool {
	p := parser{data: b}
	p.skipSpace()
	return p.value(0) == nil && p.atEnd()
}

func FuzzParseRecall(f *testing.F) {
	f.Add([]byte(validRecall))
	f.Add([]byte(`{"startTime":"2026-11-23T08:00:00Z","endTime":"2026-11-23T08:00:00Z","meals":[]}`))
	f.Add([]byte(`{"meals":[{"name":"a","foods":[{"x":[1,-2.5e+3,true,false,null,"\u00e9\n"]}]}]}`))
	f.Add([]byte(`[{"a":{}}, "x", 0.1e1]`))
	f.Add([]byte(`{"start\u0054ime":"x"}`))
	f.Add([]byte("\"\xff\""))
	f.Add([]byte(`{"startTime":"2026-11-23T08:00:00Z","endTime":"2026-11-23T08:00:00Z","meals":[],"x":[1e309,"\u0000"]}`))
	f.Add([]byte("{\"startTime\":\"2026-11-23T08:00:00Z\",\"endTime\":\"2026-11-23T08:00:00Z\",\"meals\":[{\"name\":\"fish & <chips>\",\"foods\":[]}]}"))
	f.Add([]byte("{\"startTime\":\"2026-11-23T08:00:00Z\",\"endTime\":\"2026-11-23T08:00:00Z\",\"meals\":[],\"x\":\"\u2028\u2029\u20ac\"}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, err := ParseRecall(b)
		valid := json.Valid(b) && utf8.Valid(b)
		shallow := strings.Count(string(b), "[")+strings.Count(string(b), "{") < maxDepth
		if shallow && (syntaxOK(b) && utf8.Valid(b)) != valid {
			t.Fatalf("parser syntax verdict %v, encoding/json %v", !valid, valid)
		}
		if err != nil {
			var p *httpapi.Problem
			if !errors.As(err, &p) || p.Status != 400 {
				t.Fatalf("error %v is not a 400 problem", err)
			}
			if p.Code == "malformed_json" && valid && shallow {
				t.Fatalf("valid JSON refused as malformed")
			}
			return
		}
		if !valid {
			t.Fatalf("accepted invalid JSON")
		}
		// Nothing a receiver or a store cannot take: NUL, invalid UTF-8, infinite numbers.
		if err := httpapi.CheckJSONText(b); err != nil {
			t.Fatalf("accepted a recall CheckJSONText refuses: %v", err)
		}
		// Keys match exactly, as in a map (encoding/json's struct fields would fold case).
		var doc map[string]json.RawMessage
		var meals []json.RawMessage
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatalf("accepted recall does not decode: %v", err)
		}
		if err := json.Unmarshal(doc["meals"], &meals); err != nil {
			t.Fatalf("accepted meals do not decode: %v", err)
		}
		if len(meals) != rec.Meals || rec.EndTime.Before(rec.StartTime) || string(rec.Raw) != string(b) {
			t.Fatalf("accepted recall %+v disagrees with its document", rec)
		}
		// Compact is never wrong (the stored body would then differ from the event's data),
		// and holds for what encoding/json writes unless a string has a 0xE2 byte.
		compacted, err := json.Marshal(json.RawMessage(b))
		if err != nil {
			t.Fatal(err)
		}
		isCompact := bytes.Equal(compacted, b)
		if rec.Compact && !isCompact {
			t.Fatalf("recall %q called compact; encoding/json writes %q", b, compacted)
		}
		if isCompact && !rec.Compact && !bytes.Contains(b, []byte{0xE2}) {
			t.Fatalf("compact recall %q not recognised", b)
		}
	})
}

// A recall that is already compact is stored as it is; any other is compacted: either way the
// stored body is what encoding/json writes, the bytes the event's data carries.
func TestRecallCompact(t *testing.T) {
	t.Parallel()
	compactValid, err := json.Marshal(json.RawMessage(validRecall))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		body    string
		compact bool
	}{
		{string(compactValid), true},
		{validRecall, false},
		{" " + string(compactValid), false},
		{strings.Replace(string(compactValid), `"kept as is"`, `"fish & chips"`, 1), false},
		{strings.Replace(string(compactValid), `"kept as is"`, `"\u003c\u2028 € é"`, 1), false}, // € starts with 0xE2
		{strings.Replace(string(compactValid), `"kept as is"`, `"\u003c\u2028 é"`, 1), true},
	} {
		rec, err := ParseRecall([]byte(c.body))
		if err != nil {
			t.Fatalf("%s: %v", c.body, err)
		}
		if rec.Compact != c.compact {
			t.Errorf("%s: compact %v, want %v", c.body, rec.Compact, c.compact)
		}
		want, err := json.Marshal(json.RawMessage(c.body))
		if err != nil {
			t.Fatal(err)
		}
		body := storedSubmission("sub", "s", "u", time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC), rec.Raw, rec.Compact)
		if !bytes.HasSuffix(body, append(append([]byte(`"recall":`), want...), '}')) {
			t.Errorf("%s: stored %s", c.body, body)
		}
	}
}

func BenchmarkParseRecall(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(`{"startTime":"2026-11-23T08:00:00Z","endTime":"2026-11-23T08:25:00Z","sessionId":"s","meals":[`)
	for m := 0; sb.Len() < 10<<10; m++ {
		if m > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(`{"name":"Meal","time":"07:15","foods":[{"code":"FOOD1","englishName":"Food","portionSize":{"method":"as-served","servingWeight":100.5,"leftoversWeight":0},"nutrients":{"energy":200,"protein":1.25}},{"code":"FOOD2","englishName":"Food \u00e9","nutrients":{"energy":20}}],"customData":{"place":"home"}}`)
	}
	sb.WriteString(`],"customData":{"device":"bench"}}`)
	body := []byte(sb.String())
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseRecall(body); err != nil {
			b.Fatal(err)
		}
	}
}
