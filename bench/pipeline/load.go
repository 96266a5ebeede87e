package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// recallTemplate builds a recall of about size bytes with a %s where the sessionId goes:
// meals of up to six foods, each with a portion and nutrients, as the survey app sends.
func recallTemplate(size int) (prefix, suffix string) {
	var b strings.Builder
	b.WriteString(`{"startTime":"2026-11-29T07:30:00Z","endTime":"2026-11-29T07:52:00Z","sessionId":"%s","meals":[`)
	for m := 0; b.Len() < size-200; m++ {
		if m > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"name":"Meal %d","time":"%02d:%02d","foods":[`, m+1, 6+m%15, (m*7)%60)
		for f := 0; f < 6 && b.Len() < size-200; f++ {
			if f > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"code":"F%05d","englishName":"Food %d of meal %d","portionSize":{"method":"guide-image","servingWeight":%d.0,"leftoversWeight":%d},"nutrients":{"energyKcal":%d,"proteinG":%d.5,"fatG":%d.1}}`,
				m*100+f, f+1, m+1, 80+f*15, f%3, 120+m*9+f, 3+f, 2+m%5)
		}
		b.WriteString(`],"customData":{"location":"home"}}`)
	}
	b.WriteString(`],"customData":{"client":"pipeline-bench"}}`)
	prefix, suffix, _ = strings.Cut(b.String(), "%s")
	return prefix, suffix
}

// submitted is one accepted submission as its client saw it.
type submitted struct {
	id         string
	sent, done time.Time
	late       time.Duration // with a rate: sent − when the schedule wanted it sent
}

type loadResult struct {
	accepted    []submitted
	errors      int64
	firstSent   time.Time
	lastDone    time.Time
	recallBytes int
}

// submit sends n submissions from the clients, each as one of the signed-in respondents in
// turn. With rate > 0 submission i is not sent before start + i/rate (an open schedule the
// clients keep up with while the API answers in time).
func submit(ctx context.Context, base string, tokens []string, n, clients, recallBytes, rate int, stderr io.Writer) loadResult {
	prefix, suffix := recallTemplate(recallBytes)
	tr := &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: time.Minute}
	url := base + "/api/surveys/" + surveyID + "/submission"

	var (
		next   atomic.Int64
		failed atomic.Int64
		mu     sync.Mutex
		all    = make([]submitted, 0, n)
		wg     sync.WaitGroup
	)
	start := time.Now()
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var (
				local []submitted
				buf   bytes.Buffer
			)
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					break
				}
				var due time.Time
				if rate > 0 {
					due = start.Add(time.Duration(float64(i) * float64(time.Second) / float64(rate)))
					time.Sleep(time.Until(due))
				}
				session := "s" + strconv.Itoa(i)
				buf.Reset()
				buf.WriteString(prefix)
				buf.WriteString(session)
				buf.WriteString(suffix)
				req, _ := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(buf.Bytes()))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-Auth-Token", tokens[i%len(tokens)])
				req.Header.Set("Idempotency-Key", "bench-"+session)
				sent := time.Now()
				res, err := client.Do(req)
				var rb []byte
				if err == nil {
					rb, _ = io.ReadAll(res.Body)
					res.Body.Close()
				}
				done := time.Now()
				var out struct{ SubmissionID string }
				if err != nil || res.StatusCode != http.StatusCreated || json.Unmarshal(rb, &out) != nil || out.SubmissionID == "" {
					if failed.Add(1) <= 3 {
						status := 0
						if res != nil {
							status = res.StatusCode
						}
						fmt.Fprintf(stderr, "client %d: submission %d failed: %v %d %s\n", c, i, err, status, bytes.TrimSpace(rb))
					}
					continue
				}
				var late time.Duration
				if rate > 0 {
					late = sent.Sub(due)
				}
				local = append(local, submitted{id: out.SubmissionID, sent: sent, done: done, late: late})
			}
			mu.Lock()
			all = append(all, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	res := loadResult{accepted: all, errors: failed.Load(), recallBytes: len(prefix) + len(suffix) + 6}
	for i, s := range all {
		if i == 0 || s.sent.Before(res.firstSent) {
			res.firstSent = s.sent
		}
		if s.done.After(res.lastDone) {
			res.lastDone = s.done
		}
	}
	return res
}
