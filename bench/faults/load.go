package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// accepted is one submission the API answered 201 to.
type accepted struct {
	id         string
	sent, done time.Time
}

// load is the steady load: clients submitting through the API at a fixed total rate, each
// submission as one of the respondents in turn with its own session and Idempotency-Key.
// A submission counts as accepted only on a 201 with a submission id; anything else (a
// transport error, another status) is a client error and is not retried.
type load struct {
	tr      *http.Transport
	stopped atomic.Bool
	wg      sync.WaitGroup

	mu       sync.Mutex
	accepted []accepted
	errors   map[string]int // "connection" or the status code → count
	firstErr string
}

func startLoad(base string, tokens []string, rate float64, clients int) *load {
	l := &load{errors: map[string]int{}, tr: &http.Transport{MaxIdleConnsPerHost: clients}}
	client := &http.Client{Transport: l.tr, Timeout: 15 * time.Second}
	url := base + "/api/surveys/" + surveyID + "/submission"
	var next atomic.Int64
	start := time.Now()
	run := strconv.FormatInt(start.UnixNano(), 36)
	for range clients {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for {
				i := next.Add(1) - 1
				time.Sleep(time.Until(start.Add(time.Duration(float64(i) * float64(time.Second) / rate))))
				if l.stopped.Load() {
					return
				}
				session := run + "-" + strconv.FormatInt(i, 10)
				body := fmt.Sprintf(`{"sessionId":%q,"startTime":"2026-11-29T08:00:00Z","endTime":"2026-11-29T08:20:00Z",`+
					`"meals":[{"name":"Breakfast","time":"07:30","foods":[{"code":"TOAST","portionGrams":40}]}]}`, session)
				req, _ := http.NewRequest("POST", url, bytes.NewReader([]byte(body)))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-Auth-Token", tokens[int(i)%len(tokens)])
				req.Header.Set("Idempotency-Key", session)
				sent := time.Now()
				res, err := client.Do(req)
				var rb []byte
				if err == nil {
					rb, _ = io.ReadAll(res.Body)
					res.Body.Close()
				}
				done := time.Now()
				var out struct{ SubmissionID string }
				switch {
				case err != nil:
					l.fail("connection", err.Error())
				case res.StatusCode != http.StatusCreated:
					l.fail(strconv.Itoa(res.StatusCode), string(bytes.TrimSpace(rb)))
				case json.Unmarshal(rb, &out) != nil || out.SubmissionID == "":
					l.fail("201 without a submission id", string(rb))
				default:
					l.mu.Lock()
					l.accepted = append(l.accepted, accepted{id: out.SubmissionID, sent: sent, done: done})
					l.mu.Unlock()
				}
			}
		}()
	}
	return l
}

func (l *load) fail(kind, detail string) {
	l.mu.Lock()
	l.errors[kind]++
	if l.firstErr == "" {
		l.firstErr = kind + ": " + detail
	}
	l.mu.Unlock()
}

// stop ends the load and waits for the requests in flight.
func (l *load) stop() {
	l.stopped.Store(true)
	l.wg.Wait()
	l.tr.CloseIdleConnections()
}

// snapshot returns the accepted submissions and the client errors so far.
func (l *load) snapshot() ([]accepted, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, c := range l.errors {
		n += c
	}
	return append([]accepted(nil), l.accepted...), n
}

func (l *load) errorKinds() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b bytes.Buffer
	for k, n := range l.errors {
		fmt.Fprintf(&b, "%s×%d ", k, n)
	}
	return b.String()
}
