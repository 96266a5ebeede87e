package webhook_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/pkg/webhook"
)

func benchBody() []byte { return bytes.Repeat([]byte("a"), 1024) }

// BenchmarkSign is the exported Sign with two secrets over a 1 KiB body.
func BenchmarkSign(b *testing.B) {
	body := benchBody()
	s1, s2 := webhook.NewSecret(), webhook.NewSecret()
	now := time.Now()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := webhook.Sign("evt_2KWPBgLlAfxdpx2AI54pPJ85f4W", now, body, s1, s2); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSignToken(b *testing.B) {
	body := benchBody()
	key := []byte(testJWTSecret)
	p := webhook.TokenParams{
		Issuer: "intake24", Audience: "https://receiver.example/hook", Subject: "resp-1",
		Type: "survey.session.submitted", SurveyID: "demo-survey", SessionID: "ses_1", UserID: "usr_1", SubmissionID: "sub_1",
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := webhook.SignToken(key, p, body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerify verifies a rotation-signed delivery with a JWT, as a receiver does.
func BenchmarkVerify(b *testing.B) {
	body := benchBody()
	now := time.Now()
	sig, err := webhook.Sign("evt_1", now, body, otherSecret, vectorSecret)
	if err != nil {
		b.Fatal(err)
	}
	tok, err := webhook.SignToken([]byte(testJWTSecret), webhook.TokenParams{Issuer: "intake24", Audience: testAudience, IssuedAt: now}, body)
	if err != nil {
		b.Fatal(err)
	}
	h := http.Header{}
	h.Set(webhook.HeaderID, "evt_1")
	h.Set(webhook.HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	h.Set(webhook.HeaderSignature, sig)
	h.Set("Authorization", "Bearer "+tok)
	v, err := webhook.NewVerifier(webhook.VerifierConfig{Secrets: []string{vectorSecret}, JWTSecret: testJWTSecret, Audience: testAudience})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(h, body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyV1a verifies a v1a delivery signed during a key rotation, with the old public
// key, so that both signatures are checked.
func BenchmarkVerifyV1a(b *testing.B) {
	body := benchBody()
	now := time.Now()
	newKey, _ := webhook.NewSigningKey()
	sig, err := webhook.Sign("evt_1", now, body, newKey, vectorSigningKey)
	if err != nil {
		b.Fatal(err)
	}
	h := http.Header{}
	h.Set(webhook.HeaderID, "evt_1")
	h.Set(webhook.HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
	h.Set(webhook.HeaderSignature, sig)
	v, err := webhook.NewVerifier(webhook.VerifierConfig{PublicKeys: []string{vectorPublicKey}})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(h, body); err != nil {
			b.Fatal(err)
		}
	}
}

// benchReceiver is a minimal receiver on 127.0.0.1 that counts new connections.
func benchReceiver(b *testing.B) (*httptest.Server, *atomic.Int64) {
	var dials atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			dials.Add(1)
		}
	}
	srv.Start()
	b.Cleanup(srv.Close)
	return srv, &dials
}

func benchRequest(url string, jwt bool) *webhook.Request {
	req := testRequest(url)
	req.Body = benchBody()
	req.Secrets = []string{otherSecret, vectorSecret}
	req.Header = http.Header{"Traceparent": {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}
	if jwt {
		req.JWTKey = []byte(testJWTSecret)
		req.Issuer, req.Username, req.SurveyID = "intake24", "resp-1", "demo-survey"
	}
	return req
}

// BenchmarkClientSend sends attempts one after another to a local receiver in the same process,
// with two signatures and a JWT. The receiver's CPU counts in the figures too.
func BenchmarkClientSend(b *testing.B) {
	for _, jwt := range []bool{false, true} {
		name := "signature"
		if jwt {
			name = "signature+jwt"
		}
		b.Run(name, func(b *testing.B) {
			srv, dials := benchReceiver(b)
			c := newTestClient(b, webhook.ClientConfig{NowFunc: time.Now})
			req := benchRequest(srv.URL, jwt)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if res := c.Send(ctx, req); !res.Delivered {
					b.Fatalf("Send = %+v", res)
				}
			}
			b.ReportMetric(float64(dials.Load()), "dials")
		})
	}
}

// BenchmarkClientSendV1a is BenchmarkClientSend's "signature" case for a v1a endpoint during a
// key rotation: two Ed25519 signatures per attempt.
func BenchmarkClientSendV1a(b *testing.B) {
	srv, dials := benchReceiver(b)
	c := newTestClient(b, webhook.ClientConfig{NowFunc: time.Now})
	req := benchRequest(srv.URL, false)
	newKey, _ := webhook.NewSigningKey()
	req.Secrets = []string{newKey, vectorSigningKey}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if res := c.Send(ctx, req); !res.Delivered {
			b.Fatalf("Send = %+v", res)
		}
	}
	b.ReportMetric(float64(dials.Load()), "dials")
}

// BenchmarkClientSendParallel keeps 64 attempts in flight (32 goroutines per CPU on the 2-core
// target), as a dispatcher does; ns/op is the inverse of throughput.
func BenchmarkClientSendParallel(b *testing.B) {
	srv, dials := benchReceiver(b)
	c := newTestClient(b, webhook.ClientConfig{NowFunc: time.Now})
	req := benchRequest(srv.URL, true)
	b.SetParallelism(32)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			if res := c.Send(ctx, req); !res.Delivered {
				b.Errorf("Send = %+v", res)
				return
			}
		}
	})
	b.ReportMetric(float64(dials.Load()), "dials")
}
