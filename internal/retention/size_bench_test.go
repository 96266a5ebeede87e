package retention_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/storetest"
)

// recall builds a survey recall of about size bytes: meals of six foods with portions and
// nutrients, as the survey app sends (the shape of bench/pipeline's).
func recall(size, seq int) string {
	var b strings.Builder
	fmt.Fprintf(&b, `{"startTime":"2026-11-29T07:30:00Z","endTime":"2026-11-29T07:52:00Z","sessionId":"ses_%08d","meals":[`, seq)
	for m := 0; b.Len() < size-200; m++ {
		if m > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"name":"Meal %d","time":"%02d:%02d","foods":[`, m+1, 6+m%15, (m*7+seq)%60)
		for f := 0; f < 6 && b.Len() < size-200; f++ {
			if f > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"code":"F%05d","englishName":"Food %d of meal %d","portionSize":{"method":"guide-image","servingWeight":%d.0,"leftoversWeight":%d},"nutrients":{"energyKcal":%d,"proteinG":%d.5,"fatG":%d.1}}`,
				(m*100+f+seq)%99999, f+1, m+1, 80+f*15+seq%7, f%3, 120+m*9+f+seq%13, 3+f, 2+m%5)
		}
		b.WriteString(`],"customData":{"location":"home"}}`)
	}
	b.WriteString(`]}`)
	return b.String()
}

// BenchmarkRowSizes stores BENCH_ROWS (default 20000) submissions with a ~10 KB recall and
// their events as intake stores them (the envelope without its data, which is the
// submission's body: store.Event.DataSubmissionID), one delivery each with one attempt (a
// 300-byte response body), and reports each table's bytes per row on disk, indexes and TOAST
// included: the figures of the README's disk sizing.
//
//	BENCH_STORE=postgres BENCH_ROWS=20000 go test -run '^$' -bench RowSizes -benchtime=1x ./internal/retention/
func BenchmarkRowSizes(b *testing.B) {
	if s := os.Getenv("BENCH_STORE"); s != "" && s != "postgres" {
		b.Skip("sizes are measured on PostgreSQL")
	}
	n := 20000
	if os.Getenv("BENCH_ROWS") != "" {
		n = benchRows(b)
	}
	for i := 0; i < b.N; i++ {
		db := storetest.Postgres(b)
		ctx := context.Background()
		now := time.Now()
		if _, err := db.Exec(ctx, `INSERT INTO surveys (id, name, created_at, updated_at) VALUES ('demo-survey', 'Demo', $1, $1)`,
			store.Micros(now)); err != nil {
			b.Fatal(err)
		}
		evs := make([]store.Event, 0, 500)
		subs := make([]any, 0, 500*5)
		for j := 0; j < n; j++ {
			id, sub := fmt.Sprintf("evt_%012d", j), fmt.Sprintf("sub_%012d", j)
			body := `{"id":"` + sub + `","surveyId":"demo-survey","userId":"u1","submissionTime":"2026-11-29T07:52:01Z","recall":` + recall(10000, j) + `}`
			head := `{"id":"` + id + `","type":"survey.session.submitted","timestamp":"2026-11-29T07:52:01Z","surveyId":"demo-survey","userId":"u1","username":"alice","submissionId":"` + sub + `"}`
			subs = append(subs, sub, "demo-survey", "u1", body, store.Micros(now))
			evs = append(evs, store.Event{ID: id, Type: "survey.session.submitted", SurveyID: "demo-survey",
				Subject: "dispatch24.events.demo-survey.survey.session.submitted", Payload: []byte(head), DataSubmissionID: sub,
				CreatedAt: now, Trace: map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}})
			if len(evs) == cap(evs) || j == n-1 {
				if _, err := db.Exec(ctx, `INSERT INTO submissions (id, survey_id, user_id, body, submitted_at)
					VALUES `+store.Placeholders(len(evs), 5, 1), subs...); err != nil {
					b.Fatal(err)
				}
				if err := db.Driver.Events().Insert(ctx, time.Time{}, evs); err != nil {
					b.Fatal(err)
				}
				if err := db.Driver.Events().MarkPublished(ctx, now, eventIDs(evs)); err != nil {
					b.Fatal(err)
				}
				evs, subs = evs[:0], subs[:0]
			}
		}
		if _, err := db.Exec(ctx, `INSERT INTO deliveries (id, event_id, webhook_id, survey_id, type, url, status, attempts, last_status_code,
			created_at, updated_at) SELECT 'dlv_' || substr(id, 5), id, 'wh_0123456789abcdef', survey_id, type,
			'https://receiver.example.org/hooks/dispatch24', 'succeeded', 1, 200, created_at, created_at FROM events`); err != nil {
			b.Fatal(err)
		}
		if _, err := db.Exec(ctx, `INSERT INTO delivery_attempts (delivery_id, n, started_at, duration_ms, status_code, response_body)
			SELECT id, 1, created_at, 42, 200, repeat('x', 300) FROM deliveries`); err != nil {
			b.Fatal(err)
		}
		for _, table := range []string{"submissions", "events", "deliveries", "delivery_attempts"} {
			var size int64
			if err := db.QueryRow(ctx, "SELECT pg_total_relation_size('"+table+"')").Scan(&size); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(size)/float64(n), table+"-B/row")
		}
	}
}

func eventIDs(evs []store.Event) []string {
	out := make([]string, len(evs))
	for i := range evs {
		out[i] = evs[i].ID
	}
	return out
}
