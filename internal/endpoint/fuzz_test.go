package endpoint

import (
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"slices"
	"testing"
	"unicode/utf8"

	"github.com/dispatch24/dispatch24/internal/httpapi"
	"github.com/dispatch24/dispatch24/pkg/events"
)

// FuzzWebhookBody decodes arbitrary webhook create and update bodies as the handlers do and
// checks their events and description: every refusal is a 400 problem naming a field with a
// message that is clean text, and what is accepted is a list of known event types without
// repeats (normalizing it again changes nothing) and a description the stores take.
func FuzzWebhookBody(f *testing.F) {
	for _, s := range []string{
		`{"url":"https://example.org/h","events":["survey.session.submitted"],"description":"d"}`,
		`{"events":["survey.session.submitted","survey.session.submitted","survey.session.started"]}`,
		`{"events":[]}`, `{"events":["nope\u00e9"]}`, `{"description":"\u0000"}`, "{\"description\":\"\xff\"}",
		`{"events":"x"}`, `{"disabled":"yes"}`, `{"description":null,"url":null}`,
		`{"rateLimit":20}`, `{"rateLimit":null}`, `{"rateLimit":2.5}`, `{"rateLimit":"20"}`, `{"rateLimit":1e5}`,
		`{"rateLimit":-0}`, `{"rateLimit":100000.0000000001}`,
	} {
		f.Add([]byte(s))
	}
	problem := func(t *testing.T, err error) {
		t.Helper()
		var p *httpapi.Problem
		if !errors.As(err, &p) || p.Status != http.StatusBadRequest {
			t.Fatalf("error %v is not a 400 problem", err)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var create createRequest
		var update updateRequest
		errCreate := httpapi.UnmarshalJSON(b, &create)
		errUpdate := httpapi.UnmarshalJSON(b, &update)
		if errCreate != nil {
			problem(t, errCreate)
		} else {
			checkEvents(t, create.Events)
			checkDesc(t, create.Description)
			checkRateLimitField(t, create.RateLimit)
		}
		if errUpdate != nil {
			problem(t, errUpdate)
			return
		}
		if update.Events != nil {
			checkEvents(t, update.Events)
		}
		if update.Description != nil {
			checkDesc(t, *update.Description)
		}
		checkRateLimitField(t, update.RateLimit)
	})
}

// checkRateLimitField checks what checkRateLimit makes of a decoded rateLimit against
// encoding/json's own reading: null is no limit, a number is accepted exactly when it is
// whole and from 1 to MaxRateLimit, and then as that number; anything else is refused with a
// message naming the field.
func checkRateLimitField(t *testing.T, f rateLimitField) {
	t.Helper()
	if !f.Set {
		return
	}
	n, fe := checkRateLimit(f.Raw)
	var v any
	if err := json.Unmarshal(f.Raw, &v); err != nil {
		t.Fatalf("rateLimit %q is not JSON: %v", f.Raw, err)
	}
	num, isNum := v.(float64)
	switch {
	case v == nil:
		if fe != nil || n != 0 {
			t.Fatalf("null: %d, %v; want no limit", n, fe)
		}
	case isNum && num == math.Trunc(num) && num >= 1 && num <= MaxRateLimit:
		if fe != nil || n != int(num) {
			t.Fatalf("rateLimit %s: %d, %v; want %v", f.Raw, n, fe, num)
		}
	default:
		if fe == nil || fe.Field != "rateLimit" || !utf8.ValidString(fe.Message) {
			t.Fatalf("rateLimit %s accepted as %d (error %v)", f.Raw, n, fe)
		}
	}
}

func checkEvents(t *testing.T, in []string) {
	t.Helper()
	out, msg := NormalizeEvents(in)
	if msg != "" {
		if out != nil || !httpapi.ValidText(msg) {
			t.Fatalf("refusal %q with %v", msg, out)
		}
		return
	}
	if len(out) == 0 {
		t.Fatal("an empty list accepted")
	}
	for i, e := range out {
		if !events.ValidType(e) || slices.Contains(out[:i], e) || !slices.Contains(in, e) {
			t.Fatalf("events %v normalized to %v", in, out)
		}
	}
	if again, msg := NormalizeEvents(out); msg != "" || !slices.Equal(again, out) {
		t.Fatalf("normalizing %v again gives %v %q", out, again, msg)
	}
}

func checkDesc(t *testing.T, d string) {
	t.Helper()
	if fe := checkDescription(d); fe != nil {
		if fe.Field != "description" || !httpapi.ValidText(fe.Message) {
			t.Fatalf("refusal %+v", fe)
		}
		return
	}
	if !httpapi.ValidText(d) || utf8.RuneCountInString(d) > maxDescription {
		t.Fatalf("description %q accepted", d)
	}
}
