package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// The per-stage latency breakdown comes from the spans the product already makes (no
// instrumentation of its own): the API's server span ("HTTP POST"), the recall's read and
// check ("submission.read"), the group commit's
// "submission.commit" (in the first submission's trace, linking the batch's others), the
// relay's "publish <type>", the dispatcher's "dispatch process" (from the message's arrival
// until its deliveries are recorded and it is acked) and "dispatch attempt". The harness
// adds a span processor that keeps them in memory; this works with the API and the
// dispatcher in this process only (processes export spans only over OTLP).

// spanRec is what the breakdown needs of one ended span.
type spanRec struct {
	name       string
	traceID    trace.TraceID
	id, parent trace.SpanID
	links      []trace.SpanID
	start, end time.Time
}

// spanLog is a span processor keeping ended spans while on.
type spanLog struct {
	on    atomic.Bool
	mu    sync.Mutex
	spans []spanRec
}

var _ sdktrace.SpanProcessor = (*spanLog)(nil)

func (l *spanLog) OnStart(context.Context, sdktrace.ReadWriteSpan) {}

func (l *spanLog) OnEnd(s sdktrace.ReadOnlySpan) {
	if !l.on.Load() {
		return
	}
	r := spanRec{name: s.Name(), traceID: s.SpanContext().TraceID(), id: s.SpanContext().SpanID(),
		parent: s.Parent().SpanID(), start: s.StartTime(), end: s.EndTime()}
	for _, k := range s.Links() {
		r.links = append(r.links, k.SpanContext.SpanID())
	}
	l.mu.Lock()
	l.spans = append(l.spans, r)
	l.mu.Unlock()
}

func (l *spanLog) Shutdown(context.Context) error   { return nil }
func (l *spanLog) ForceFlush(context.Context) error { return nil }

// stage is one step on the path from a submission's due time to its event acked.
type stage struct {
	name, what string
	d          []time.Duration
}

// breakdown pairs every accepted submission's spans into stages. due holds the submissions'
// due (or send) times by their HTTP spans' start order: the generator's request is matched
// to its server span by the submission id is not possible (the span does not carry it), so
// the client-side stage (due → server span start) is reported as a distribution over all.
func (l *spanLog) breakdown() (stages []*stage, complete, incomplete int) {
	l.mu.Lock()
	spans := slices.Clone(l.spans)
	l.mu.Unlock()

	byTrace := map[trace.TraceID][]*spanRec{}
	commitOf := map[trace.SpanID]*spanRec{}
	for i := range spans {
		s := &spans[i]
		if s.name == "submission.commit" {
			commitOf[s.parent] = s
			for _, k := range s.links {
				commitOf[k] = s
			}
			continue
		}
		byTrace[s.traceID] = append(byTrace[s.traceID], s)
	}
	mk := func(name, what string) *stage {
		st := &stage{name: name, what: what}
		stages = append(stages, st)
		return st
	}
	var (
		route   = mk("route+auth", "server span start → read span start: middleware, routing, the access token's check")
		read    = mk("read+parse", "read span: the request body read and the recall checked (submission.read)")
		wait    = mk("commit wait", "read span end → commit span start: envelope built, group-commit wait for a writer and the batch")
		commit  = mk("commit", "the batch's transaction, commit included (commit span)")
		respond = mk("respond", "commit span end → server span end: the 201 written")
		handoff = mk("outbox→publish", "commit span end → publish span start: the relay's fast path picks the event up")
		consume = mk("publish→consume", "publish span start → dispatch process start: JetStream stores the event and delivers it to the dispatcher")
		pubAck  = mk("(publish ack)", "publish span: until JetStream's ack reaches the relay (off the delivery's path)")
		queue   = mk("dispatch queue", "dispatch process start → first attempt start: envelope decode, endpoint lookup, worker and endpoint slot")
		attempt = mk("attempt", "attempt span: sign, POST, the receiver's answer (the receipt is inside)")
		record  = mk("record+ack", "last attempt end → dispatch process end: delivery and attempt rows committed (result writer), message acked (parked deliveries left out)")
		total   = mk("server start→acked", "server span start → dispatch process end")
	)
	for _, ss := range byTrace {
		var h, rd, p, d *spanRec
		var atts []*spanRec
		for _, s := range ss {
			switch {
			case strings.HasPrefix(s.name, "POST ") && strings.HasSuffix(s.name, "/submission"):
				if s.parent.IsValid() {
					continue
				}
				h = s
			case s.name == "submission.read":
				rd = s
			case strings.HasPrefix(s.name, "publish "):
				p = s
			case s.name == "dispatch process":
				d = s
			case s.name == "dispatch attempt":
				atts = append(atts, s)
			}
		}
		if h == nil {
			continue
		}
		c := commitOf[h.id]
		if c == nil || rd == nil || p == nil || d == nil || len(atts) == 0 {
			incomplete++
			continue
		}
		complete++
		first, last := atts[0], atts[0]
		for _, a := range atts {
			if a.start.Before(first.start) {
				first = a
			}
			if a.end.After(last.end) {
				last = a
			}
		}
		route.d = append(route.d, rd.start.Sub(h.start))
		read.d = append(read.d, rd.end.Sub(rd.start))
		wait.d = append(wait.d, c.start.Sub(rd.end))
		commit.d = append(commit.d, c.end.Sub(c.start))
		respond.d = append(respond.d, h.end.Sub(c.end))
		handoff.d = append(handoff.d, p.start.Sub(c.end))
		consume.d = append(consume.d, d.start.Sub(p.start))
		pubAck.d = append(pubAck.d, p.end.Sub(p.start))
		queue.d = append(queue.d, first.start.Sub(d.start))
		for _, a := range atts {
			attempt.d = append(attempt.d, a.end.Sub(a.start))
		}
		if !d.end.Before(last.end) {
			// A delivery parked for a congested endpoint is acked when parked and sent from
			// the store later: its record stage is not on this path.
			record.d = append(record.d, d.end.Sub(last.end))
		}
		total.d = append(total.d, d.end.Sub(h.start))
	}
	for _, st := range stages {
		slices.Sort(st.d)
	}
	return stages, complete, incomplete
}

// reportStages prints the breakdown, with the client side (due → server span start is not
// matched per submission; its distribution is due → 201 minus the server's time).
func reportStages(out io.Writer, l *spanLog, acc []submitted) {
	stages, complete, incomplete := l.breakdown()
	fmt.Fprintf(out, "stages (from the product's spans; %d submissions with every span, %d without):\n", complete, incomplete)
	fmt.Fprintf(out, "  %-20s %9s %9s %9s  %s\n", "stage", "p50", "p99", "mean", "what")
	for _, st := range stages {
		var sum time.Duration
		for _, d := range st.d {
			sum += d
		}
		mean := time.Duration(0)
		if len(st.d) > 0 {
			mean = sum / time.Duration(len(st.d))
		}
		fmt.Fprintf(out, "  %-20s %9s %9s %9s  %s\n", st.name, pct(st.d, 50), pct(st.d, 99), mean.Round(100*time.Microsecond), st.what)
	}
	fmt.Fprintf(out, "  not measured by any span: the client's own queueing (due → connection, the request's headers) is in due → 201 above\n")
}
