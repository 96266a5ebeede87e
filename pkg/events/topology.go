package events

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Names of the topology.
const (
	StreamName    = "DISPATCH24_EVENTS"
	SubjectPrefix = "dispatch24.events"
	ConsumerName  = "dispatcher"
)

// MinServerVersion is the oldest NATS server Dispatch24 runs against.
const MinServerVersion = "2.10.0"

// ErrServerTooOld is returned when the connected NATS server is older than MinServerVersion.
var ErrServerTooOld = errors.New("NATS server too old")

// CheckServerVersion refuses servers older than MinServerVersion and servers without JetStream.
func CheckServerVersion(nc *nats.Conn) error {
	v := nc.ConnectedServerVersion()
	if !versionAtLeast(v, MinServerVersion) {
		return fmt.Errorf("%w: %s is %s, Dispatch24 needs %s or newer", ErrServerTooOld, nc.ConnectedUrlRedacted(), v, MinServerVersion)
	}
	return nil
}

func versionAtLeast(have, want string) bool {
	parse := func(s string) [3]int {
		var out [3]int
		s, _, _ = strings.Cut(strings.TrimPrefix(s, "v"), "-")
		for i, p := range strings.SplitN(s, ".", 3) {
			out[i], _ = strconv.Atoi(p)
		}
		return out
	}
	h, w := parse(have), parse(want)
	for i := range h {
		if h[i] != w[i] {
			return h[i] > w[i]
		}
	}
	return true
}

// StreamConfig sizes the events stream.
type StreamConfig struct {
	// Replicas is 1 on a single server, 3 on a cluster (default 1).
	Replicas int
	// MaxAge bounds how long an unconsumed event stays (default 7 days; negative: no bound).
	MaxAge time.Duration
	// MaxBytes and MaxMsgs bound the stream's size (default, or negative: no bound). A full
	// stream refuses new messages (discard new): a work queue must not drop events that no
	// dispatcher has taken, and a refused publish stays in the publisher's outbox.
	MaxBytes, MaxMsgs int64
	// DuplicateWindow is how long Nats-Msg-Id deduplication remembers ids (default 2 minutes).
	DuplicateWindow time.Duration
}

func (c StreamConfig) withDefaults() StreamConfig {
	if c.Replicas <= 0 {
		c.Replicas = 1
	}
	switch {
	case c.MaxAge == 0:
		c.MaxAge = 7 * 24 * time.Hour
	case c.MaxAge < 0:
		c.MaxAge = 0 // JetStream's "no limit"
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = -1
	}
	if c.MaxMsgs <= 0 {
		c.MaxMsgs = -1
	}
	if c.DuplicateWindow <= 0 {
		c.DuplicateWindow = 2 * time.Minute
	}
	return c
}

// EnsureStream creates or updates the events stream: an existing stream takes cfg's limits.
func EnsureStream(ctx context.Context, js jetstream.JetStream, cfg StreamConfig) (jetstream.Stream, error) {
	cfg = cfg.withDefaults()
	s, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        StreamName,
		Description: "Dispatch24 survey events, consumed by the dispatchers",
		Subjects:    []string{SubjectPrefix + ".>"},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
		MaxAge:      cfg.MaxAge,
		MaxBytes:    cfg.MaxBytes,
		MaxMsgs:     cfg.MaxMsgs,
		Duplicates:  cfg.DuplicateWindow,
		Discard:     jetstream.DiscardNew,
	})
	if err != nil {
		return nil, fmt.Errorf("creating stream %s: %w", StreamName, err)
	}
	return s, nil
}

// ConsumerConfig sizes the dispatchers' shared consumer.
type ConsumerConfig struct {
	// AckWait is how long a dispatcher may hold a message without acking or sending an
	// in-progress ack (default 60s).
	AckWait time.Duration
	// MaxAckPending bounds messages in flight across all dispatchers (default 20000).
	MaxAckPending int
}

// EnsureConsumer creates or updates the durable consumer the dispatchers share.
func EnsureConsumer(ctx context.Context, js jetstream.JetStream, cfg ConsumerConfig) (jetstream.Consumer, error) {
	if cfg.AckWait <= 0 {
		cfg.AckWait = 60 * time.Second
	}
	if cfg.MaxAckPending <= 0 {
		cfg.MaxAckPending = 20000
	}
	c, err := js.CreateOrUpdateConsumer(ctx, StreamName, jetstream.ConsumerConfig{
		Durable:       ConsumerName,
		Description:   "Dispatch24 delivery workers",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       cfg.AckWait,
		MaxDeliver:    -1,
		MaxAckPending: cfg.MaxAckPending,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		FilterSubject: SubjectPrefix + ".>",
	})
	if err != nil {
		return nil, fmt.Errorf("creating consumer %s: %w", ConsumerName, err)
	}
	return c, nil
}
