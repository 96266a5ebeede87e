package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/dispatch24/dispatch24/internal/store"
)

// ReplayerConfig configures a Replayer.
type ReplayerConfig struct {
	// DB is the store. Required.
	DB *store.DB
	// BatchSize is how many deliveries one transaction enqueues. Default 500.
	BatchSize int
	// PollInterval is how often the Replayer looks for replays to work on and refreshes the
	// progress of running ones (Kick wakes it sooner). Default 5s.
	PollInterval time.Duration
	// MaxFailures is how many consecutive failed batches mark a replay failed. Default 5.
	MaxFailures int
	// Logger receives progress and errors. Default slog.Default().
	Logger *slog.Logger
	// NowFunc returns the current time. Default time.Now.
	NowFunc func() time.Time
}

// WithDefaults returns c with its zero fields set to their defaults.
func (c ReplayerConfig) WithDefaults() ReplayerConfig {
	if c.BatchSize == 0 {
		c.BatchSize = 500
	}
	if c.PollInterval == 0 {
		c.PollInterval = 5 * time.Second
	}
	if c.MaxFailures == 0 {
		c.MaxFailures = 5
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.NowFunc == nil {
		c.NowFunc = time.Now
	}
	return c
}

func (c ReplayerConfig) validate() error {
	switch {
	case c.DB == nil:
		return errors.New("a store is required")
	case c.BatchSize < 1 || c.BatchSize > 10000:
		// Bigger batches only make longer transactions.
		return errors.New("batch size must be from 1 to 10000")
	case c.PollInterval < 0:
		return errors.New("poll interval must not be negative")
	case c.MaxFailures < 1:
		return errors.New("max failures must be at least 1")
	}
	return nil
}

// Replayer enqueues the deliveries of range replays in batches and follows their progress
// until they complete. Run it in every API process; replays survive restarts and are resumed
// from their saved cursor.
type Replayer struct {
	cfg      ReplayerConfig
	store    *Store
	kick     chan struct{}
	failures map[string]int // consecutive failed batches by replay, touched only by Process
}

// NewReplayer returns a Replayer for cfg, with defaults applied.
func NewReplayer(cfg ReplayerConfig) (*Replayer, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("replayer: %w", err)
	}
	return &Replayer{
		cfg:      cfg,
		store:    NewStore(cfg.DB),
		kick:     make(chan struct{}, 1),
		failures: map[string]int{},
	}, nil
}

// Kick wakes the Replayer to work on a new replay now. It never blocks.
func (r *Replayer) Kick() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Run works on replays until ctx ends: at start (resuming what a stopped process left), on
// every Kick and every PollInterval. It returns nil when ctx ends.
func (r *Replayer) Run(ctx context.Context) error {
	ticker := time.NewTicker(r.cfg.PollInterval)
	defer ticker.Stop()
	for {
		if err := r.Process(ctx); err != nil && ctx.Err() == nil {
			r.cfg.Logger.WarnContext(ctx, "replayer pass failed; retrying later", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		case <-r.kick:
		}
	}
}

// Process enqueues every remaining batch of every running replay, then refreshes the progress
// of the replays whose batches are all in. It is what Run does on each wake-up; tools and
// tests call it directly. It must not run concurrently with itself on one Replayer.
func (r *Replayer) Process(ctx context.Context) error {
	for ctx.Err() == nil {
		res, err := r.store.EnqueueBatch(ctx, r.cfg.BatchSize, r.cfg.NowFunc())
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if res.ReplayID == "" {
				return err
			}
			// The next wake-up tries again; the replay fails after MaxFailures in a row.
			r.batchFailed(ctx, res.ReplayID, err)
			return err
		}
		if res.ReplayID == "" {
			break
		}
		delete(r.failures, res.ReplayID)
		if res.Finished {
			r.cfg.Logger.InfoContext(ctx, "replay enqueued", "replay_id", res.ReplayID)
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	ids, err := r.store.EnqueuingReplays(ctx)
	if err != nil {
		return err
	}
	for _, id := range ids {
		rp, err := r.store.RefreshReplay(ctx, id, r.cfg.NowFunc())
		if err != nil {
			return err
		}
		if rp.Status == ReplayCompleted {
			r.cfg.Logger.InfoContext(ctx, "replay completed", "replay_id", id, "deliveries", rp.Enqueued)
		}
	}
	return nil
}

// batchFailed counts a failed batch of replay id and marks the replay failed when the error
// cannot pass or has repeated MaxFailures times, so it does not hold its filter's slot forever.
func (r *Replayer) batchFailed(ctx context.Context, id string, err error) {
	r.failures[id]++
	n := r.failures[id]
	if !errors.Is(err, errBadFilter) && n < r.cfg.MaxFailures {
		return
	}
	reason := "enqueuing failed repeatedly; see the API logs"
	if errors.Is(err, errBadFilter) {
		reason = "the stored filter is unreadable"
	}
	delete(r.failures, id)
	if ferr := r.store.FailReplay(context.WithoutCancel(ctx), id, reason, r.cfg.NowFunc()); ferr != nil {
		r.cfg.Logger.ErrorContext(ctx, "marking replay failed", "replay_id", id, "err", ferr)
		return
	}
	r.cfg.Logger.ErrorContext(ctx, "replay failed", "replay_id", id, "reason", reason)
}
