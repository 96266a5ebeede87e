package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/dispatch24/dispatch24/internal/telemetry"
	"github.com/dispatch24/dispatch24/pkg/events"
)

// States of a NATSLink, as /readyz and the logs name them.
const (
	// NATSConnecting: no connection to any server yet, or reconnecting after losing it.
	NATSConnecting = "connecting"
	// NATSSettingUp: connected; the server's version and the stream and consumer are being
	// checked (after every connect and reconnect).
	NATSSettingUp = "setting_up"
	// NATSReady: connected to an accepted server, stream and consumer in place.
	NATSReady = "ready"
	// NATSRefused: connected to a server older than Dispatch24 supports; nothing is published
	// or consumed through it. The link leaves it for another server in NATS_URL periodically.
	NATSRefused = "server_too_old"
	// NATSClosed: the connection is closed for good (the process is stopping).
	NATSClosed = "closed"
)

// NATSLinkConfig configures a NATSLink.
type NATSLinkConfig struct {
	// Conn is the connection, created with RetryOnFailedConnect and unlimited reconnects (or
	// in-process); it may still be connecting. Required.
	Conn *nats.Conn
	// Logger (required).
	Logger *slog.Logger
	// Stream and Consumer size the topology the link ensures.
	Stream   events.StreamConfig
	Consumer events.ConsumerConfig
	// VersionCheckFunc refuses servers Dispatch24 does not support (default
	// events.CheckServerVersion).
	VersionCheckFunc func(*nats.Conn) error
	// SetupTimeout bounds one attempt at checking and ensuring the topology (default 10s).
	SetupTimeout time.Duration
	// MaxBackoff caps the wait between failed setup attempts (default 5s).
	MaxBackoff time.Duration
	// RefusedRetry is how often the link leaves a refused (too old) server, forcing a
	// reconnect that may reach another server of the pool (default 30s).
	RefusedRetry time.Duration
}

func (c NATSLinkConfig) withDefaults() NATSLinkConfig {
	if c.VersionCheckFunc == nil {
		c.VersionCheckFunc = events.CheckServerVersion
	}
	if c.SetupTimeout <= 0 {
		c.SetupTimeout = 10 * time.Second
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 5 * time.Second
	}
	if c.RefusedRetry <= 0 {
		c.RefusedRetry = 30 * time.Second
	}
	return c
}

// NATSLink keeps a process's NATS side usable without ever stopping the process for it: the
// connection retries in the background forever, and after every connect and reconnect the
// link checks the server's version and that the events stream and the dispatchers' consumer
// exist, creating them when they are missing (a server restarted with an empty store). Run it
// as a component; until it is ready the API keeps accepting into the outbox and the
// dispatcher waits for its consumer.
type NATSLink struct {
	cfg NATSLinkConfig
	nc  *nats.Conn
	js  jetstream.JetStream

	setupLog *telemetry.FailureLog
	kick     chan struct{}

	mu        sync.Mutex
	state     string
	err       error              // why the last setup failed, if it did
	consumer  jetstream.Consumer // nil until the first setup succeeds
	created   bool               // the topology was created or updated once (full setup)
	setupAt   uint64             // the connection's reconnect count at the last setup (good or refused)
	refusedAt time.Time          // when the current server was refused
	recheck   bool               // a user saw signs that the topology is gone
	ready     chan struct{}      // closed while ready
	onReady   []func()
	// recreated is closed (and replaced) when the topology had to be created again.
	recreated chan struct{}
}

// NewNATSLink returns a link over cfg.Conn; Run keeps it up.
func NewNATSLink(cfg NATSLinkConfig) (*NATSLink, error) {
	cfg = cfg.withDefaults()
	if cfg.Conn == nil || cfg.Logger == nil {
		return nil, errors.New("NATS link: Conn and Logger are required")
	}
	js, err := jetstream.New(cfg.Conn)
	if err != nil {
		return nil, fmt.Errorf("JetStream: %w", err)
	}
	return &NATSLink{
		cfg: cfg,
		nc:  cfg.Conn,
		js:  js,
		setupLog: &telemetry.FailureLog{
			Logger:       cfg.Logger,
			Msg:          "setting up the NATS topology failed; retrying",
			RecoveredMsg: "NATS topology set up after failures",
			Interval:     30 * time.Second,
		},
		kick:      make(chan struct{}, 1),
		state:     NATSConnecting,
		ready:     make(chan struct{}),
		recreated: make(chan struct{}),
	}, nil
}

// State is the link's state: NATSReady or why not.
func (l *NATSLink) State() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.currentState()
}

// currentState corrects the recorded state by the connection's own, which changes first.
// l.mu is held.
func (l *NATSLink) currentState() string {
	switch {
	case l.nc.IsClosed():
		return NATSClosed
	case !l.nc.IsConnected():
		return NATSConnecting
	case l.state == NATSReady && l.nc.Stats().Reconnects != l.setupAt:
		return NATSSettingUp // reconnected; Run has not caught up yet
	case l.state == NATSConnecting:
		return NATSSettingUp
	}
	return l.state
}

// lastErr is why the last setup failed, if it did.
func (l *NATSLink) lastErr() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// Ready reports whether the link is ready: connected to an accepted server, with the stream
// and consumer in place since the last (re)connect.
func (l *NATSLink) Ready() bool { return l.State() == NATSReady }

// Usable reports whether publishing may go ahead now: connected to a server whose version is
// accepted. It does not wait for the topology check, which a publish does not need when the
// stream exists (and which fails it cleanly when not).
func (l *NATSLink) Usable() bool {
	return l.nc.IsConnected() && l.cfg.VersionCheckFunc(l.nc) == nil
}

// ReadyCheck is nil when the link is ready, else an error whose State method names the state
// (a fixed word, which /readyz shows).
func (l *NATSLink) ReadyCheck(context.Context) error {
	if s := l.State(); s != NATSReady {
		return &stateError{state: s}
	}
	return nil
}

// stateError is a link state as an error; httpapi shows its State on /readyz.
type stateError struct{ state string }

func (e *stateError) Error() string { return "NATS " + e.state }

// State is the word /readyz shows.
func (e *stateError) State() string { return e.state }

// OnReady adds f to the functions called each time the link becomes ready (after a connect,
// a reconnect or a repaired topology), from the link's goroutine: f must not block.
func (l *NATSLink) OnReady(f func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.onReady = append(l.onReady, f)
}

// Recheck asks the link to check the stream and consumer again at once, for users that saw
// signs of them missing (a publish without a stream, a deleted consumer).
func (l *NATSLink) Recheck() {
	l.mu.Lock()
	l.recheck = true
	l.mu.Unlock()
	l.wake()
}

func (l *NATSLink) wake() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// Consumer returns the dispatchers' consumer, waiting until the link is ready. It fails only
// when ctx ends or the connection is closed.
func (l *NATSLink) Consumer(ctx context.Context) (jetstream.Consumer, error) {
	for {
		l.mu.Lock()
		state, c, ready := l.currentState(), l.consumer, l.ready
		l.mu.Unlock()
		switch state {
		case NATSReady:
			return c, nil
		case NATSClosed:
			return nil, fmt.Errorf("NATS: %w", nats.ErrConnectionClosed)
		}
		// Ready may be closed already while the state lags (a reconnect Run has not seen):
		// poll briefly then.
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-ready:
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
}

// Recreated returns a channel closed when the link next has to create the stream or consumer
// again (a server came back with an empty store, the consumer was deleted). Message iterators
// opened before then should be opened again: their pull requests went to a consumer that no
// longer exists.
func (l *NATSLink) Recreated() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.recreated
}

// CurrentConsumer is the consumer when the link is ready, else nil (for metrics that must not
// wait).
func (l *NATSLink) CurrentConsumer() jetstream.Consumer {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.currentState() != NATSReady {
		return nil
	}
	return l.consumer
}

// Run keeps the link up until ctx ends: it sets up after every connect and reconnect, retries
// failed setups with backoff, and leaves a refused server every RefusedRetry.
func (l *NATSLink) Run(ctx context.Context) error {
	status := l.nc.StatusChanged(nats.CONNECTED, nats.RECONNECTING, nats.DISCONNECTED, nats.CLOSED)
	defer l.nc.RemoveStatusListener(status)
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = 100 * time.Millisecond
	bo.MaxInterval = l.cfg.MaxBackoff
	bo.MaxElapsedTime = 0
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-status:
		case <-l.kick:
		case <-timer.C:
		}
		timer.Stop()
		retry, delay := l.step(ctx)
		switch {
		case retry:
			timer.Reset(bo.NextBackOff())
		case delay > 0:
			bo.Reset()
			timer.Reset(delay)
		default:
			bo.Reset()
		}
	}
}

// step brings the link up to date with the connection; Run calls it on every status change,
// kick and timer. It reports whether to retry with backoff, or else when to look again (0:
// at the next event).
func (l *NATSLink) step(ctx context.Context) (retry bool, delay time.Duration) {
	l.mu.Lock()
	state := l.currentState()
	needed := state != NATSReady || l.recheck
	refusedFor := time.Duration(-1)
	if l.state == NATSRefused && l.setupAt == l.nc.Stats().Reconnects {
		refusedFor = time.Since(l.refusedAt)
	}
	l.mu.Unlock()
	switch {
	case state == NATSClosed || state == NATSConnecting:
		l.setState(state, nil)
		return false, 0
	case !needed:
		return false, 0
	case refusedFor >= l.cfg.RefusedRetry:
		// Still on the refused server: leave it; the reconnect may reach another of the pool.
		l.cfg.Logger.DebugContext(ctx, "leaving the refused NATS server", "server", l.nc.ConnectedUrlRedacted())
		if err := l.nc.ForceReconnect(); err != nil {
			l.cfg.Logger.WarnContext(ctx, "forcing a NATS reconnect failed", "err", err)
		}
		return false, l.cfg.RefusedRetry
	case refusedFor >= 0:
		return false, l.cfg.RefusedRetry - refusedFor
	}
	return l.setup(ctx)
}

// setup checks the server and ensures the topology on the current connection.
func (l *NATSLink) setup(ctx context.Context) (retry bool, delay time.Duration) {
	reconnects := l.nc.Stats().Reconnects
	if err := l.cfg.VersionCheckFunc(l.nc); err != nil {
		l.mu.Lock()
		first := l.state != NATSRefused || l.setupAt != reconnects
		l.state, l.err, l.setupAt, l.refusedAt = NATSRefused, err, reconnects, time.Now()
		l.resetReady()
		l.mu.Unlock()
		if first {
			l.cfg.Logger.ErrorContext(ctx, "NATS server refused: nothing is published or consumed through it; "+
				"the process stays up, not ready for NATS work, and tries again on every reconnect and every "+l.cfg.RefusedRetry.String(),
				"err", err)
		}
		return false, l.cfg.RefusedRetry
	}
	l.setState(NATSSettingUp, nil)
	sctx, cancel := context.WithTimeout(ctx, l.cfg.SetupTimeout)
	defer cancel()
	l.mu.Lock()
	full := !l.created
	l.recheck = false
	l.mu.Unlock()
	start := time.Now()
	c, recreated, err := l.ensure(sctx, full)
	if err != nil {
		if ctx.Err() != nil {
			return false, 0
		}
		l.setState(NATSSettingUp, err)
		l.setupLog.Fail(ctx, 1, err)
		return true, 0
	}
	l.setupLog.Recover(ctx)
	l.mu.Lock()
	l.consumer, l.created = c, true
	if recreated {
		close(l.recreated)
		l.recreated = make(chan struct{})
	}
	if l.nc.Stats().Reconnects != reconnects || !l.nc.IsConnected() {
		// The connection changed under the setup: do it again.
		l.mu.Unlock()
		return true, 0
	}
	l.state, l.err, l.setupAt = NATSReady, nil, reconnects
	wasReady := false
	select {
	case <-l.ready:
		wasReady = true
	default:
		close(l.ready)
	}
	hooks := append([]func(){}, l.onReady...)
	l.mu.Unlock()
	if !wasReady {
		l.cfg.Logger.InfoContext(ctx, "NATS ready", "server", l.nc.ConnectedUrlRedacted(),
			"version", l.nc.ConnectedServerVersion(), "took", time.Since(start).Round(time.Millisecond))
	}
	for _, f := range hooks {
		f()
	}
	return false, 0
}

// ensure makes sure the stream and consumer exist. The first time it creates or updates
// them, so a changed configuration applies; afterwards it only looks them up and creates
// what is missing, so the reconnects of a cluster failover cost reads, not updates.
// recreated reports that something was missing and had to be created again.
func (l *NATSLink) ensure(ctx context.Context, full bool) (c jetstream.Consumer, recreated bool, err error) {
	if !full {
		_, err := l.js.Stream(ctx, events.StreamName)
		if err == nil {
			c, err := l.js.Consumer(ctx, events.StreamName, events.ConsumerName)
			if err == nil {
				return c, false, nil
			}
			if !errors.Is(err, jetstream.ErrConsumerNotFound) {
				return nil, false, fmt.Errorf("looking up consumer %s: %w", events.ConsumerName, err)
			}
		} else if !errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil, false, fmt.Errorf("looking up stream %s: %w", events.StreamName, err)
		}
		l.cfg.Logger.WarnContext(ctx, "NATS topology missing after a reconnect (a server with a fresh store?); creating it",
			"server", l.nc.ConnectedUrlRedacted())
	}
	if _, err := events.EnsureStream(ctx, l.js, l.cfg.Stream); err != nil {
		return nil, false, err
	}
	c, err = events.EnsureConsumer(ctx, l.js, l.cfg.Consumer)
	return c, !full && err == nil, err
}

// setState records a state other than ready. l.mu is not held.
func (l *NATSLink) setState(state string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.state, l.err = state, err
	l.resetReady()
}

// resetReady opens a new ready channel if the current one is closed. l.mu is held.
func (l *NATSLink) resetReady() {
	select {
	case <-l.ready:
		l.ready = make(chan struct{})
	default:
	}
}
