package delivery_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/internal/delivery"
	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/storetest"
)

// history seeds 30 deliveries a minute apart: webhooks wh1, wh2 (s1), wh3 (s2) in turn,
// statuses and types cycling.
func history() []row {
	hooks := [][2]string{{"wh1", "s1"}, {"wh2", "s1"}, {"wh3", "s2"}}
	types := []string{"survey.session.submitted", "survey.session.started"}
	out := make([]row, 30)
	for i := range out {
		h := hooks[i%3]
		out[i] = row{
			id: fmt.Sprintf("dlv_h%02d", i), event: fmt.Sprintf("evt_h%02d", i), webhook: h[0], survey: h[1],
			typ: types[i%2], status: delivery.Statuses[i%4], created: t0.Add(time.Duration(i) * time.Minute),
		}
	}
	return out
}

// expect applies a filter to the seeded rows: the ids it should list, newest first.
func expect(rows []row, keep func(r row) bool) []string {
	var ids []string
	for i := len(rows) - 1; i >= 0; i-- {
		if keep(rows[i]) {
			ids = append(ids, rows[i].id)
		}
	}
	return ids
}

// listAll follows nextCursor through every page of query and returns the ids in order.
func (b *bundle) listAll(t *testing.T, who, query string) []string {
	t.Helper()
	var ids []string
	cursor := ""
	for page := 0; ; page++ {
		if page > 100 {
			t.Fatal("pagination does not end")
		}
		q := query
		if cursor != "" {
			q += "&cursor=" + url.QueryEscape(cursor)
		}
		code, out, raw := b.do(t, who, "GET", "/api/admin/deliveries?"+q, nil)
		if code != http.StatusOK {
			t.Fatalf("list %s: %d %s", q, code, raw)
		}
		for _, it := range out["items"].([]any) {
			ids = append(ids, it.(map[string]any)["id"].(string))
		}
		next, _ := out["nextCursor"].(string)
		if next == "" {
			return ids
		}
		cursor = next
	}
}

func TestListFilters(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		b := setup(t, db, 100)
		rows := history()
		insert(t, db, rows)
		at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
		ts := func(m int) string { return url.QueryEscape(at(m).Format(time.RFC3339)) }
		all := func(row) bool { return true }
		for _, c := range []struct {
			who, query string
			keep       func(r row) bool
		}{
			{asAdmin, "", all},
			{asAdmin, "surveyId=s1", func(r row) bool { return r.survey == "s1" }},
			{asAdmin, "webhookId=wh2", func(r row) bool { return r.webhook == "wh2" }},
			{asAdmin, "status=failed", func(r row) bool { return r.status == "failed" }},
			{asAdmin, "status=failed&status=skipped", func(r row) bool { return r.status == "failed" || r.status == "skipped" }},
			{asAdmin, "status=failed,skipped", func(r row) bool { return r.status == "failed" || r.status == "skipped" }},
			{asAdmin, "status=pending,%20succeeded&status=pending", func(r row) bool { return r.status == "pending" || r.status == "succeeded" }},
			{asAdmin, "type=survey.session.started", func(r row) bool { return r.typ == "survey.session.started" }},
			{asAdmin, "since=" + ts(10), func(r row) bool { return !r.created.Before(at(10)) }},
			{asAdmin, "until=" + ts(20), func(r row) bool { return r.created.Before(at(20)) }},
			{asAdmin, "since=" + ts(10) + "&until=" + ts(20), func(r row) bool { return !r.created.Before(at(10)) && r.created.Before(at(20)) }},
			{asAdmin, "since=" + url.QueryEscape(at(10).In(time.FixedZone("x", 3600)).Format(time.RFC3339Nano)), func(r row) bool { return !r.created.Before(at(10)) }},
			{asAdmin, "surveyId=s1&status=failed,pending&since=" + ts(5) + "&type=survey.session.submitted", func(r row) bool {
				return r.survey == "s1" && (r.status == "failed" || r.status == "pending") && !r.created.Before(at(5)) && r.typ == "survey.session.submitted"
			}},
			{asAdmin, "surveyId=nope", func(row) bool { return false }},
			{asStaff, "", func(r row) bool { return r.survey == "s1" }},
			{asStaff, "surveyId=s1&webhookId=wh1", func(r row) bool { return r.webhook == "wh1" }},
			{asStaff, "webhookId=wh3", func(row) bool { return false }}, // another survey's webhook: nothing
			{asStranger, "", func(row) bool { return false }},
		} {
			want := expect(rows, c.keep)
			for _, limit := range []string{"", "&limit=7", "&limit=1"} {
				got := b.listAll(t, c.who, c.query+limit)
				if !slices.Equal(got, want) {
					t.Errorf("%s ?%s%s:\n got %v\nwant %v", c.who, c.query, limit, got, want)
				}
			}
		}

		// A cursor past until (from another listing) does not widen the range.
		c := delivery.Cursor{CreatedAt: store.Micros(at(20)), ID: "dlv_h20"}.Encode()
		code, out, raw := b.do(t, asAdmin, "GET", "/api/admin/deliveries?until="+ts(10)+"&cursor="+url.QueryEscape(c), nil)
		if got := out["items"].([]any); code != http.StatusOK || len(got) != 10 || got[0].(map[string]any)["id"] != "dlv_h09" {
			t.Fatalf("cursor past until: %d %s", code, raw)
		}

		// One page: the item fields.
		code, out, raw = b.do(t, asAdmin, "GET", "/api/admin/deliveries?limit=2&status=failed", nil)
		if code != http.StatusOK {
			t.Fatalf("%d %s", code, raw)
		}
		it := out["items"].([]any)[0].(map[string]any)
		for _, k := range []string{"id", "eventId", "type", "surveyId", "webhookId", "url", "status", "attempts",
			"lastStatusCode", "lastError", "nextAttemptAt", "createdAt", "updatedAt"} {
			if _, ok := it[k]; !ok {
				t.Errorf("item lacks %s: %v", k, it)
			}
		}
		if it["id"] != "dlv_h26" || it["lastStatusCode"] != float64(500) || it["nextAttemptAt"] != nil ||
			it["createdAt"] != at(26).Format(time.RFC3339) {
			t.Errorf("item %v", it)
		}
		if _, ok := it["replayOf"]; ok {
			t.Errorf("a first delivery shows replayOf: %v", it)
		}
		if out["nextCursor"] == nil {
			t.Error("no nextCursor on a full page")
		}
	})
}

func TestListAccessAndBadFilters(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		b := setup(t, db, 100)
		insert(t, db, history())
		if code, out, _ := b.do(t, asStaff, "GET", "/api/admin/deliveries?surveyId=s2", nil); code != http.StatusNotFound || out["code"] != "survey_not_found" {
			t.Errorf("staff on another survey: %d %v", code, out)
		}
		if code, _, _ := b.do(t, asRespondent, "GET", "/api/admin/deliveries", nil); code != http.StatusForbidden {
			t.Errorf("respondent: %d", code)
		}
		if code, _, _ := b.do(t, "", "GET", "/api/admin/deliveries", nil); code != http.StatusUnauthorized {
			t.Errorf("anonymous: %d", code)
		}
		for field, query := range map[string]string{
			"status": "status=failed,bogus",
			"type":   "type=survey.session.exploded",
			"since":  "since=yesterday",
			"until":  "since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z",
			"cursor": "cursor=not-a-cursor",
			"limit":  "limit=501",
		} {
			code, out, _ := b.do(t, asAdmin, "GET", "/api/admin/deliveries?"+query, nil)
			expectValidation(t, code, out, field)
		}
		for _, q := range []string{"limit=0", "limit=abc", "limit=-1", "until=2026-13-01T00:00:00Z", "cursor=" + delivery.Cursor{ID: ""}.Encode()} {
			if code, _, _ := b.do(t, asAdmin, "GET", "/api/admin/deliveries?"+q, nil); code != http.StatusBadRequest {
				t.Errorf("?%s: %d", q, code)
			}
		}
	})
}

func TestPaginationAcrossInserts(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		b := setup(t, db, 100)
		rows := history()
		insert(t, db, rows)
		want := expect(rows, func(row) bool { return true })

		var got []string
		cursor := ""
		for page := 0; page < 20; page++ {
			q := "limit=4"
			if cursor != "" {
				q += "&cursor=" + url.QueryEscape(cursor)
			}
			code, out, raw := b.do(t, asAdmin, "GET", "/api/admin/deliveries?"+q, nil)
			if code != http.StatusOK {
				t.Fatalf("%d %s", code, raw)
			}
			for _, it := range out["items"].([]any) {
				got = append(got, it.(map[string]any)["id"].(string))
			}
			// New deliveries arrive between pages, newer than everything listed.
			insert(t, db, []row{{
				id: fmt.Sprintf("dlv_new%02d", page), event: "evt_new", webhook: "wh1", survey: "s1",
				typ: "survey.session.submitted", status: "pending", created: t0.Add(time.Hour + time.Duration(page)*time.Second),
			}})
			next, _ := out["nextCursor"].(string)
			if next == "" {
				break
			}
			cursor = next
		}
		if !slices.Equal(got, want) {
			t.Fatalf("pages across inserts:\n got %v\nwant %v", got, want)
		}
		if n := len(b.listAll(t, asAdmin, "limit=500")); n != len(rows)+8 {
			t.Fatalf("a fresh listing shows %d", n)
		}
	})
}

func TestDeliveryDetail(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		b := setup(t, db, 100)
		insert(t, db, history())
		started := store.Micros(t0.Add(2 * time.Minute))
		for _, a := range []struct {
			n    int
			code any
			err  string
			body string
		}{{1, 500, "http_error", "oops"}, {2, nil, "timeout", ""}} {
			if _, err := db.Exec(ctx, `INSERT INTO delivery_attempts (delivery_id, n, started_at, duration_ms, status_code, error, response_body)
				VALUES ('dlv_h02', $1, $2, 120, $3, $4, $5)`, a.n, started, a.code, a.err, a.body); err != nil {
				t.Fatal(err)
			}
		}
		code, out, raw := b.do(t, asAdmin, "GET", "/api/admin/deliveries/dlv_h02", nil)
		if code != http.StatusOK || out["id"] != "dlv_h02" || out["status"] != "failed" {
			t.Fatalf("detail: %d %s", code, raw)
		}
		log := out["attemptLog"].([]any)
		if len(log) != 2 {
			t.Fatalf("attempt log %v", log)
		}
		a1, a2 := log[0].(map[string]any), log[1].(map[string]any)
		if a1["n"] != float64(1) || a1["statusCode"] != float64(500) || a1["error"] != "http_error" || a1["responseBody"] != "oops" ||
			a1["durationMs"] != float64(120) || a1["startedAt"] != t0.Add(2*time.Minute).Format(time.RFC3339) {
			t.Errorf("attempt 1: %v", a1)
		}
		if a2["n"] != float64(2) || a2["statusCode"] != nil || a2["error"] != "timeout" {
			t.Errorf("attempt 2: %v", a2)
		}
		code, out, _ = b.do(t, asAdmin, "GET", "/api/admin/deliveries/dlv_h00", nil)
		if code != http.StatusOK || len(out["attemptLog"].([]any)) != 0 {
			t.Errorf("no attempts: %d %v", code, out)
		}
		// dlv_h02 belongs to s2 (wh3): out of the staff's reach, and of a stranger's.
		for _, who := range []string{asStaff, asStranger} {
			if code, out, _ := b.do(t, who, "GET", "/api/admin/deliveries/dlv_h02", nil); code != http.StatusNotFound || out["code"] != "delivery_not_found" {
				t.Errorf("%s: %d %v", who, code, out)
			}
		}
		if code, _, _ := b.do(t, asStaff, "GET", "/api/admin/deliveries/dlv_h01", nil); code != http.StatusOK {
			t.Errorf("staff on own survey: %d", code)
		}
		if code, _, _ := b.do(t, asAdmin, "GET", "/api/admin/deliveries/dlv_nope", nil); code != http.StatusNotFound {
			t.Errorf("unknown: %d", code)
		}
	})
}

func TestReplayOne(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		b := setup(t, db, 100)
		insert(t, db, history())
		if _, err := db.Exec(ctx, "UPDATE webhooks SET url = 'https://wh1.example/moved' WHERE id = 'wh1'"); err != nil {
			t.Fatal(err)
		}
		before := time.Now().Add(-time.Second)
		code, out, raw := b.do(t, asStaff, "POST", "/api/admin/deliveries/dlv_h00/replay", nil)
		if code != http.StatusAccepted || out["replayOf"] != "dlv_h00" {
			t.Fatalf("replay: %d %s", code, raw)
		}
		id := out["deliveryId"].(string)
		code, out, raw = b.do(t, asStaff, "GET", "/api/admin/deliveries/"+id, nil)
		if code != http.StatusOK || out["replayOf"] != "dlv_h00" || out["status"] != "pending" || out["attempts"] != float64(0) ||
			out["eventId"] != "evt_h00" || out["webhookId"] != "wh1" || out["surveyId"] != "s1" || out["type"] != "survey.session.submitted" ||
			out["url"] != "https://wh1.example/moved" || out["lastStatusCode"] != nil || out["lastError"] != "" {
			t.Fatalf("replayed delivery: %d %s", code, raw)
		}
		next, err := time.Parse(time.RFC3339Nano, out["nextAttemptAt"].(string))
		if err != nil || next.Before(before) {
			t.Fatalf("nextAttemptAt %v %v", out["nextAttemptAt"], err)
		}
		if _, ok := out["replayId"]; ok {
			t.Errorf("a single replay has a replayId: %v", out)
		}
		// A replay of a replay links to its own original.
		code, out, _ = b.do(t, asAdmin, "POST", "/api/admin/deliveries/"+id+"/replay", nil)
		if code != http.StatusAccepted || out["replayOf"] != id {
			t.Fatalf("replay of a replay: %d %v", code, out)
		}

		if _, err := db.Exec(ctx, "UPDATE webhooks SET disabled = $1, disabled_reason = 'gone' WHERE id = 'wh2'", true); err != nil {
			t.Fatal(err)
		}
		if code, out, _ := b.do(t, asAdmin, "POST", "/api/admin/deliveries/dlv_h01/replay", nil); code != http.StatusConflict || out["code"] != "endpoint_disabled" {
			t.Errorf("disabled endpoint: %d %v", code, out)
		}
		if _, err := db.Exec(ctx, "DELETE FROM webhooks WHERE id = 'wh3'"); err != nil {
			t.Fatal(err)
		}
		if code, out, _ := b.do(t, asAdmin, "POST", "/api/admin/deliveries/dlv_h02/replay", nil); code != http.StatusNotFound || out["code"] != "webhook_not_found" {
			t.Errorf("deleted endpoint: %d %v", code, out)
		}
		if code, out, _ := b.do(t, asStaff, "POST", "/api/admin/deliveries/dlv_h05/replay", nil); code != http.StatusNotFound || out["code"] != "delivery_not_found" {
			t.Errorf("staff out of reach: %d %v", code, out)
		}
		if n := count(t, db, "SELECT count(*) FROM deliveries WHERE replay_of IS NOT NULL"); n != 2 {
			t.Errorf("%d replay rows, want 2", n)
		}
	})
}
