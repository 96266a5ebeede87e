package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dispatch24/dispatch24/pkg/events"
	"github.com/dispatch24/dispatch24/pkg/webhook"
)

// receiver is the webhook endpoint: an HTTP server on 127.0.0.1 that verifies every
// delivery with pkg/webhook and counts receipts by webhook-id (the event id). refuse closes
// its listener, so that deliveries meet a refused connection, until accept listens again on
// the same address.
type receiver struct {
	addr string

	mu        sync.Mutex
	srv       *http.Server
	verifier  *webhook.Verifier
	receipts  map[string]int       // webhook-id → receipts
	firstSeen map[string]time.Time // submissionId → first receipt
	submOf    map[string]string    // webhook-id → submissionId

	rejected  atomic.Int64
	firstFail atomic.Pointer[string]
}

func startReceiver() (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &receiver{addr: ln.Addr().String(), receipts: map[string]int{}, firstSeen: map[string]time.Time{}, submOf: map[string]string{}}
	r.serve(ln)
	return r, nil
}

func (r *receiver) url() string { return "http://" + r.addr + "/hook" }

func (r *receiver) setVerifier(v *webhook.Verifier) {
	r.mu.Lock()
	r.verifier = v
	r.mu.Unlock()
}

func (r *receiver) serve(ln net.Listener) {
	srv := &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	r.mu.Lock()
	r.srv = srv
	r.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

// refuse closes the listener and every open connection: new deliveries are refused.
func (r *receiver) refuse() {
	r.mu.Lock()
	srv := r.srv
	r.srv = nil
	r.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// accept listens again on the same address.
func (r *receiver) accept() error {
	var err error
	for range 50 { // the port was ours a moment ago; a closing socket may hold it briefly
		var ln net.Listener
		if ln, err = net.Listen("tcp", r.addr); err == nil {
			r.serve(ln)
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("listening again on %s: %w", r.addr, err)
}

func (r *receiver) close() { r.refuse() }

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	now := time.Now()
	body, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, "reading body", http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	v := r.verifier
	r.mu.Unlock()
	if v == nil {
		http.Error(w, "no verifier yet", http.StatusServiceUnavailable)
		return
	}
	got, err := v.Verify(req.Header, body)
	if err == nil && (got.Claims == nil || got.Claims.SubmissionID == "") {
		err = errors.New("no submissionId in the verified claims")
	}
	if err == nil {
		err = wholeEnvelope(body, got.Claims.SubmissionID)
	}
	if err != nil {
		r.rejected.Add(1)
		msg := fmt.Sprintf("webhook-id %q: %v", req.Header.Get(webhook.HeaderID), err)
		r.firstFail.CompareAndSwap(nil, &msg)
		http.Error(w, "verification failed", http.StatusUnauthorized)
		return
	}
	r.mu.Lock()
	r.receipts[got.ID]++
	r.submOf[got.ID] = got.Claims.SubmissionID
	if _, ok := r.firstSeen[got.Claims.SubmissionID]; !ok {
		r.firstSeen[got.Claims.SubmissionID] = now
	}
	r.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// wholeEnvelope checks that body is the whole envelope of submission id: its data is the
// stored submission with its recall (an event read back from the store, by the relay's sweep
// or a retry, joins the data in again; a delivery without it must not pass).
func wholeEnvelope(body []byte, id string) error {
	var env events.Event
	var data struct {
		ID     string          `json:"id"`
		Recall json.RawMessage `json:"recall"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		return fmt.Errorf("envelope: %w", err)
	}
	if env.SubmissionID != id || len(env.Data) == 0 || json.Unmarshal(env.Data, &data) != nil || data.ID != id ||
		len(data.Recall) < 2 || data.Recall[0] != '{' {
		return fmt.Errorf("envelope of submission %s without its whole data: %.200s", id, body)
	}
	return nil
}

// counts are the receiver's exact figures at one moment.
type receiverCounts struct {
	distinct, receipts, duplicates int
	firstSeen                      map[string]time.Time // a copy
}

func (r *receiver) counts() receiverCounts {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := receiverCounts{distinct: len(r.receipts), firstSeen: make(map[string]time.Time, len(r.firstSeen))}
	for _, n := range r.receipts {
		c.receipts += n
		c.duplicates += n - 1
	}
	for k, v := range r.firstSeen {
		c.firstSeen[k] = v
	}
	return c
}

// delivered reports how many of the submissions have arrived.
func (r *receiver) delivered(ids []string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, id := range ids {
		if _, ok := r.firstSeen[id]; ok {
			n++
		}
	}
	return n
}
