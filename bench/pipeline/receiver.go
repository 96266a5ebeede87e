package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dispatch24/dispatch24/pkg/webhook"
)

// receiver is the webhook receiver on 127.0.0.1: one path per endpoint (/hook/<k>), each
// with its own Verifier. It answers 204, or 401 to a delivery that fails verification (the
// dispatcher then retries it, and the run fails its checks). It counts distinct webhook-ids
// per endpoint and notes when each submission's event first arrived.
type receiver struct {
	srv  *http.Server
	addr string

	verifyMode  string
	verifyEvery int64
	seq         atomic.Int64

	eps []*receiverEndpoint

	requests, verified, rejected, malformed atomic.Int64
	distinct                                atomic.Int64
	lastReceipt                             atomic.Int64 // unix nanos
	firstRejection                          atomic.Pointer[string]

	bufs sync.Pool
}

type receiverEndpoint struct {
	verifier *webhook.Verifier
	url      string

	mu         sync.Mutex
	seen       map[string]struct{}  // webhook-ids
	firstSeen  map[string]time.Time // submissionId → first receipt
	duplicates int64
}

func startReceiver(endpoints int, verifyMode string, verifyEvery int) (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &receiver{addr: ln.Addr().String(), verifyMode: verifyMode, verifyEvery: int64(verifyEvery)}
	r.bufs.New = func() any { return new(bytes.Buffer) }
	for range endpoints {
		r.eps = append(r.eps, &receiverEndpoint{seen: map[string]struct{}{}, firstSeen: map[string]time.Time{}})
	}
	r.srv = &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

func (r *receiver) url(k int) string { return "http://" + r.addr + "/hook/" + strconv.Itoa(k) }

// setSecret gives endpoint k the Verifier of its signing secret and the survey's JWT secret.
func (r *receiver) setSecret(k int, secret, jwtSecret, issuer, url string) error {
	v, err := webhook.NewVerifier(webhook.VerifierConfig{Secrets: []string{secret}, JWTSecret: jwtSecret, Issuer: issuer, Audience: url})
	if err != nil {
		return err
	}
	r.eps[k].verifier, r.eps[k].url = v, url
	return nil
}

func (r *receiver) close() { _ = r.srv.Close() }

var submissionIDKey = []byte(`"submissionId":"`)

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	now := time.Now()
	r.requests.Add(1)
	k, err := strconv.Atoi(strings.TrimPrefix(req.URL.Path, "/hook/"))
	if err != nil || k < 0 || k >= len(r.eps) || req.Method != http.MethodPost {
		r.malformed.Add(1)
		http.NotFound(w, req)
		return
	}
	ep := r.eps[k]
	buf := r.bufs.Get().(*bytes.Buffer)
	defer r.bufs.Put(buf)
	buf.Reset()
	if _, err := io.Copy(buf, req.Body); err != nil {
		r.malformed.Add(1)
		http.Error(w, "reading body", http.StatusBadRequest)
		return
	}
	body := buf.Bytes()
	id := req.Header.Get(webhook.HeaderID)
	// The envelope's fixed fields come before data, so submissionId is near the start.
	var sub string
	if i := bytes.Index(body[:min(len(body), 2048)], submissionIDKey); i >= 0 {
		rest := body[i+len(submissionIDKey):]
		if j := bytes.IndexByte(rest, '"'); j > 0 {
			sub = string(rest[:j])
		}
	}
	if id == "" || sub == "" {
		r.malformed.Add(1)
		http.Error(w, "no webhook-id or submissionId", http.StatusBadRequest)
		return
	}
	if r.verifyMode == "all" || (r.verifyMode == "sample" && r.seq.Add(1)%r.verifyEvery == 0) {
		v, err := ep.verifier.Verify(req.Header, body)
		if err == nil && (v.ID != id || v.Claims == nil || v.Claims.SubmissionID != sub) {
			err = errors.New("verified claims do not match the delivery")
		}
		if err != nil {
			r.rejected.Add(1)
			msg := fmt.Sprintf("endpoint %d, webhook-id %s: %v", k, id, err)
			r.firstRejection.CompareAndSwap(nil, &msg)
			http.Error(w, "verification failed", http.StatusUnauthorized)
			return
		}
		r.verified.Add(1)
	}
	ep.mu.Lock()
	if _, dup := ep.seen[id]; dup {
		ep.duplicates++
	} else {
		ep.seen[id] = struct{}{}
		if _, ok := ep.firstSeen[sub]; !ok {
			ep.firstSeen[sub] = now
		}
		r.distinct.Add(1)
	}
	ep.mu.Unlock()
	for {
		last := r.lastReceipt.Load()
		if now.UnixNano() <= last || r.lastReceipt.CompareAndSwap(last, now.UnixNano()) {
			break
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// duplicates is the number of repeated webhook-ids over all endpoints.
func (r *receiver) duplicates() int64 {
	var n int64
	for _, ep := range r.eps {
		ep.mu.Lock()
		n += ep.duplicates
		ep.mu.Unlock()
	}
	return n
}
