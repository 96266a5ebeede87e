package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/dispatch24/dispatch24/internal/app"
	"github.com/dispatch24/dispatch24/pkg/events"
	"github.com/dispatch24/dispatch24/pkg/webhook"
)

// The bare loop is the least any dispatcher must do per delivery: pull the event from
// JetStream, sign it with pkg/webhook (the webhook-signature HMAC and the Authorization
// JWT, through webhook.Client.Send as the dispatcher sends), POST it to a receiver of the
// same kind as the real run's (its own instance, same endpoints and verification mode) and
// ack the message once every endpoint answered 2xx. It has no database: no delivery rows, no
// attempt log, no endpoint lookup. The drain's ratio to it is what the store and the
// engine's bookkeeping cost.
//
// To compare like with like it runs with the real dispatcher's defaults: one pull iterator
// with the same PullMaxMessages, 64 × NumCPU attempts in flight (DISPATCH_CONCURRENCY) and at
// most 32 per endpoint (DISPATCH_ENDPOINT_CONCURRENCY), in this process; the same events
// (copied, before the drain, from the real stream into a stream of its own) and the same
// webhook client configuration.

const (
	bareStream  = "BENCH_BARE"
	barePrefix  = "benchbare"
	bareDurable = "bare"
)

// bareCopy copies the events stream's messages (read by sequence, not consumed) into a work
// queue stream of the bare loop's own.
func (w *world) bareCopy(ctx context.Context) (int, error) {
	src, err := w.js.Stream(ctx, events.StreamName)
	if err != nil {
		return 0, err
	}
	info, err := src.Info(ctx)
	if err != nil {
		return 0, err
	}
	dst, err := w.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: bareStream, Subjects: []string{barePrefix + ".>"}, Retention: jetstream.WorkQueuePolicy,
		Storage: jetstream.FileStorage,
	})
	if err != nil {
		return 0, err
	}
	_ = dst
	var futures []jetstream.PubAckFuture
	n := 0
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := src.GetMsg(ctx, seq)
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				continue
			}
			return n, fmt.Errorf("reading event %d: %w", seq, err)
		}
		f, err := w.js.PublishAsync(barePrefix+"."+m.Subject, m.Data)
		if err != nil {
			return n, err
		}
		futures = append(futures, f)
		n++
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return n, err
		case <-ctx.Done():
			return n, ctx.Err()
		}
	}
	return n, nil
}

type bareResult struct {
	deliveries int
	took       time.Duration
	cpu        time.Duration // this process
	failed     int64
}

// runBare drains the bare stream to a fresh receiver and returns how long it took.
func (w *world) runBare(ctx context.Context, events int) (bareResult, error) {
	recv, err := startReceiver(w.o.endpoints, w.o.verify, w.o.verifyEvery)
	if err != nil {
		return bareResult{}, err
	}
	defer recv.close()
	for k := range w.o.endpoints {
		if err := recv.setSecret(k, w.epSecrets[k], w.jwtSecret, tokenIssuer, recv.url(k)); err != nil {
			return bareResult{}, err
		}
	}
	client, err := webhook.NewClient(webhook.ClientConfig{Timeout: webhookTTL, AllowNets: w.allowNets, UserAgent: "Dispatch24/" + app.Version})
	if err != nil {
		return bareResult{}, err
	}
	defer client.Close()
	cons, err := w.js.CreateOrUpdateConsumer(ctx, bareStream, jetstream.ConsumerConfig{
		Durable: bareDurable, AckPolicy: jetstream.AckExplicitPolicy, AckWait: 2*webhookTTL + 30*time.Second,
		MaxDeliver: -1, MaxAckPending: 20000, DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return bareResult{}, err
	}

	concurrency := 64 * runtime.NumCPU()
	slots := make([]chan struct{}, w.o.endpoints)
	for k := range slots {
		slots[k] = make(chan struct{}, 32)
	}
	type job struct {
		msg  jetstream.Msg
		ep   int
		left *atomic.Int32
		head bareHead
		ok   *atomic.Bool
	}
	jobs := make(chan job, concurrency)
	var failed atomic.Int64
	var workers sync.WaitGroup
	secrets := make([][]string, w.o.endpoints)
	for k := range secrets {
		secrets[k] = []string{w.epSecrets[k]}
	}
	for range concurrency {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for j := range jobs {
				slots[j.ep] <- struct{}{}
				res := client.Send(ctx, &webhook.Request{
					URL: recv.url(j.ep), MessageID: j.head.id, EventType: j.head.typ, Body: j.msg.Data(),
					Secrets: secrets[j.ep], JWTKey: []byte(w.jwtSecret), Issuer: tokenIssuer,
					Username: j.head.username, SurveyID: j.head.surveyID, SessionID: j.head.sessionID,
					UserID: j.head.userID, SubmissionID: j.head.submissionID,
				})
				<-slots[j.ep]
				if !res.Delivered {
					j.ok.Store(false)
					failed.Add(1)
				}
				if j.left.Add(-1) == 0 {
					if j.ok.Load() {
						_ = j.msg.Ack()
					} else {
						_ = j.msg.Nak()
					}
				}
			}
		}()
	}

	c0 := selfCPU()
	start := time.Now()
	it, err := cons.Messages(jetstream.PullMaxMessages(min(max(2*concurrency, 64), 4096)))
	if err != nil {
		close(jobs)
		return bareResult{}, err
	}
	want := int64(events * w.o.endpoints)
	go func() {
		for {
			msg, err := it.Next()
			if err != nil {
				return
			}
			h := scanHead(msg.Data())
			left := new(atomic.Int32)
			left.Store(int32(w.o.endpoints))
			ok := new(atomic.Bool)
			ok.Store(true)
			for k := range w.o.endpoints {
				jobs <- job{msg: msg, ep: k, left: left, head: h, ok: ok}
			}
		}
	}()
	for recv.distinct.Load() < want {
		select {
		case <-ctx.Done():
			it.Stop()
			return bareResult{}, fmt.Errorf("bare loop: the receiver got %d of %d: %w", recv.distinct.Load(), want, ctx.Err())
		case <-time.After(2 * time.Millisecond):
		}
	}
	took := time.Since(start)
	cpu := selfCPU() - c0
	it.Stop()
	close(jobs)
	workers.Wait()
	if recv.rejected.Load() > 0 {
		return bareResult{}, fmt.Errorf("bare loop: the receiver rejected %d deliveries: %s", recv.rejected.Load(), *recv.firstRejection.Load())
	}
	return bareResult{deliveries: int(want), took: took, cpu: cpu, failed: failed.Load()}, nil
}

// bareHead is the envelope's fields the JWT carries.
type bareHead struct {
	id, typ, surveyID, sessionID, userID, username, submissionID string
}

// scanHead finds the envelope's string fields by their keys in the envelope's head (they
// precede data and hold no escapes: ids and names the API made). The bare loop is a lower
// bound, so it reads them as cheaply as anything could.
func scanHead(b []byte) bareHead {
	head := b[:min(len(b), 2048)]
	get := func(key string) string {
		k := []byte(`"` + key + `":"`)
		i := bytes.Index(head, k)
		if i < 0 {
			return ""
		}
		rest := head[i+len(k):]
		j := bytes.IndexByte(rest, '"')
		if j < 0 {
			return ""
		}
		return string(rest[:j])
	}
	return bareHead{id: get("id"), typ: get("type"), surveyID: get("surveyId"), sessionID: get("sessionId"),
		userID: get("userId"), username: get("username"), submissionID: get("submissionId")}
}
