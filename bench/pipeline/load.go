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
	// due is when the schedule wanted it sent (with a rate); latencies are measured from it,
	// so time spent waiting behind a slow API counts (no coordinated omission).
	due  time.Time
	late time.Duration // with a rate: sent − due, the generator's own lag
}

// from is the time latencies of s start at: the due time under a rate, else the send time.
func (s submitted) from() time.Time {
	if !s.due.IsZero() {
		return s.due
	}
	return s.sent
}

type loadResult struct {
	accepted    []submitted
	errors      int64
	firstSent   time.Time
	lastDone    time.Time
	recallBytes int
	// inFlightMax is the most requests outstanding at once (open loop only).
	inFlightMax int64
}

// submit sends n submissions, each as one of the signed-in respondents in turn.
//
// Without a rate, clients goroutines send back to back (closed loop: a slow answer delays
// the client's next request).
//
// With rate > 0 the load is open loop: submission i is due at start + i/rate and is sent at
// its due time on a goroutine of its own, whatever the API is doing, so nothing is skipped
// and a slow answer never delays later requests (the connection pool is unbounded; clients
// does not limit concurrency). Latencies are measured from the due time.
func submit(ctx context.Context, base string, tokens []string, n, clients, recallBytes, rate int, stderr io.Writer) loadResult {
	prefix, suffix := recallTemplate(recallBytes)
	tr := &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients}
	if rate > 0 {
		tr = &http.Transport{MaxIdleConnsPerHost: 1024}
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: time.Minute}
	url := base + "/api/surveys/" + surveyID + "/submission"

	var (
		failed            atomic.Int64
		mu                sync.Mutex
		all               = make([]submitted, 0, n)
		inFlight, inFlMax atomic.Int64
	)
	// one sends submission i and returns it, ok false when it was not accepted.
	one := func(i int, due time.Time, buf *bytes.Buffer) (submitted, bool) {
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
				fmt.Fprintf(stderr, "submission %d failed: %v %d %s\n", i, err, status, bytes.TrimSpace(rb))
			}
			return submitted{}, false
		}
		s := submitted{id: out.SubmissionID, sent: sent, done: done, due: due}
		if !due.IsZero() {
			s.late = sent.Sub(due)
		}
		return s, true
	}

	var wg sync.WaitGroup
	start := time.Now()
	if rate > 0 {
		bufs := sync.Pool{New: func() any { return new(bytes.Buffer) }}
		for i := range n {
			due := start.Add(time.Duration(float64(i) * float64(time.Second) / float64(rate)))
			if d := time.Until(due); d > 0 {
				select {
				case <-ctx.Done():
				case <-time.After(d):
				}
			}
			if ctx.Err() != nil {
				break
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				cur := inFlight.Add(1)
				for {
					m := inFlMax.Load()
					if cur <= m || inFlMax.CompareAndSwap(m, cur) {
						break
					}
				}
				buf := bufs.Get().(*bytes.Buffer)
				s, ok := one(i, due, buf)
				bufs.Put(buf)
				inFlight.Add(-1)
				if ok {
					mu.Lock()
					all = append(all, s)
					mu.Unlock()
				}
			}()
		}
	} else {
		var next atomic.Int64
		for range clients {
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
					if s, ok := one(i, time.Time{}, &buf); ok {
						local = append(local, s)
					}
				}
				mu.Lock()
				all = append(all, local...)
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	res := loadResult{accepted: all, errors: failed.Load(), recallBytes: len(prefix) + len(suffix) + 6, inFlightMax: inFlMax.Load()}
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
