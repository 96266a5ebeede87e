package retention

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dispatch24/dispatch24/internal/delivery"
	"github.com/dispatch24/dispatch24/internal/outbox"
	"github.com/dispatch24/dispatch24/internal/store"
)

// LeaseName names the purge's lease in the leases table.
const LeaseName = "retention-purge"

// Config configures a Purger. Zero fields take the defaults given.
type Config struct {
	// DB is the store (required).
	DB *store.DB
	// Retention is how long rows are kept after their last activity (RETENTION); 0 keeps
	// everything and Run only waits.
	Retention time.Duration
	// Interval is the time between two purges (default 10m). The first purge runs
	// FirstDelay (default 1m) after Run starts, so that a fleet's start is not a purge.
	Interval   time.Duration
	FirstDelay time.Duration
	// BatchSize is the most deliveries (with their attempts) or events one batch deletes
	// (default 1000): one short transaction each. Batches shrink (down to 50) while they
	// take longer than twice BatchTarget and grow back while they take less than half of it,
	// so that a slow store (SQLite's one writer, a busy disk) is held only briefly.
	BatchSize int
	// BatchTarget is the duration batches aim at (default 25ms).
	BatchTarget time.Duration
	// Pause is the least pause after each batch (default 20ms). The purger also pauses at
	// least as long as the batch took, so it holds its connection (SQLite: the one writer)
	// at most half of the time.
	Pause time.Duration
	// LeaseTTL is how long the purge's lease lasts without renewal (default 2m); it is
	// renewed before every batch.
	LeaseTTL time.Duration
	// ReclaimPages is the most pages one step of SQLite's incremental vacuum frees
	// (default 2048, 8 MiB of 4 KiB pages).
	ReclaimPages int
	// Holder names this process in the leases table (default host name, pid and a random
	// suffix).
	Holder string
	// Registerer receives the purge's metrics (nil: none).
	Registerer prometheus.Registerer
	// Logger (required).
	Logger *slog.Logger
	// NowFunc is the clock (default time.Now).
	NowFunc func() time.Time
}

func (c Config) withDefaults() Config {
	if c.Interval <= 0 {
		c.Interval = 10 * time.Minute
	}
	if c.FirstDelay <= 0 {
		c.FirstDelay = time.Minute
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 1000
	}
	if c.BatchTarget <= 0 {
		c.BatchTarget = 25 * time.Millisecond
	}
	if c.Pause <= 0 {
		c.Pause = 20 * time.Millisecond
	}
	if c.LeaseTTL <= 0 {
		c.LeaseTTL = 2 * time.Minute
	}
	if c.ReclaimPages <= 0 {
		c.ReclaimPages = 2048
	}
	if c.Holder == "" {
		host, _ := os.Hostname()
		var b [4]byte
		_, _ = rand.Read(b[:])
		c.Holder = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
	}
	if c.NowFunc == nil {
		c.NowFunc = time.Now
	}
	return c
}

func (c Config) validate() error {
	if c.DB == nil || c.Logger == nil {
		return errors.New("retention: DB and Logger are required")
	}
	if c.Retention < 0 {
		return errors.New("retention: Retention must not be negative")
	}
	return nil
}

// deliveryPurge is what the purge asks of the owner of the deliveries, delivery_attempts and
// delivery_tombstones tables (internal/delivery's Store).
type deliveryPurge interface {
	PurgeDeliveries(ctx context.Context, from, cutoff time.Time, limit int) (store.PurgedDeliveries, error)
	OldestFinishedDelivery(ctx context.Context) (time.Time, error)
	PruneTombstones(ctx context.Context, cutoff time.Time) (int64, error)
	ReclaimSpace(ctx context.Context, maxPages int) (int, error)
}

// eventPurge is what the purge asks of the owner of the events table (internal/outbox's
// Archive).
type eventPurge interface {
	PurgePublished(ctx context.Context, cutoff time.Time, after store.EventCursor, limit int) (store.PurgedEvents, error)
	OldestPublished(ctx context.Context) (time.Time, error)
}

var (
	_ deliveryPurge = (*delivery.Store)(nil)
	_ eventPurge    = (*outbox.Archive)(nil)
)

// Purger deletes what is past retention, in the background of every api and dispatcher; a
// lease lets one of them purge at a time.
type Purger struct {
	cfg        Config
	deliveries deliveryPurge
	events     eventPurge
	leases     store.Leases
	metrics    *metrics

	vacuumWarn sync.Once
	prepared   bool // ReclaimSpace has run once (SQLite: converted while still small)
	// afterBatch, when set (tests), runs after every batch.
	afterBatch func()
}

// New returns a purger; Run runs it.
func New(cfg Config) (*Purger, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	// The leases table is this package's own (it is its only user); deliveries and events are
	// reached through their owners.
	return &Purger{cfg: cfg, deliveries: delivery.NewStore(cfg.DB), events: outbox.NewArchive(cfg.DB), leases: cfg.DB.Driver.Leases(),
		metrics: m}, nil
}

// Run purges every Interval until ctx ends. A failed purge is logged and tried again at the
// next interval: it never stops the process. With Retention 0 it only waits.
func (p *Purger) Run(ctx context.Context) error {
	if p.cfg.Retention == 0 {
		p.cfg.Logger.InfoContext(ctx, "retention off (RETENTION=0): nothing is purged")
		<-ctx.Done()
		return nil
	}
	timer := time.NewTimer(p.cfg.FirstDelay)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		res, err := p.PurgeOnce(ctx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			p.cfg.Logger.WarnContext(ctx, "retention purge failed; trying again at the next interval", "err", err,
				"purged", res.String(), "next_in", p.cfg.Interval)
		case res.Skipped:
			p.cfg.Logger.DebugContext(ctx, "retention purge left to the lease's holder")
		case res.Rows() > 0 || res.Tombstones > 0:
			p.cfg.Logger.InfoContext(ctx, "retention purge", "purged", res.String(), "batches", res.Batches,
				"took", res.Took.Round(time.Millisecond), "cutoff", res.Cutoff.Format(time.RFC3339))
		}
		timer.Reset(p.cfg.Interval)
	}
}

// Result is what one purge did.
type Result struct {
	// Skipped: another process holds the lease; nothing was done.
	Skipped bool
	// Cutoff is the last activity before which rows were deleted.
	Cutoff time.Time
	// Deliveries, Attempts and Events count the rows deleted.
	Deliveries, Attempts, Events int
	// Tombstones counts the deleted surveys' tombstones pruned: deleted before the cutoff,
	// they guard nothing any more (store.Deliveries.PruneTombstones). Not in Rows.
	Tombstones int
	// Batches counts the delete transactions; Took is the whole purge's duration, Reclaim
	// the part of it spent giving the space back (VACUUM, incremental_vacuum) after the
	// deletes.
	Batches       int
	Took, Reclaim time.Duration
}

// Rows is the total of rows deleted.
func (r Result) Rows() int { return r.Deliveries + r.Attempts + r.Events }

func (r Result) String() string {
	return fmt.Sprintf("%d deliveries, %d attempts, %d events, %d survey tombstones", r.Deliveries, r.Attempts, r.Events, r.Tombstones)
}

// errLeaseLost: another process took the lease while this one purged (it had expired: a
// pause longer than LeaseTTL). The purge stops; the other carries on.
var errLeaseLost = errors.New("the purge's lease was taken over")

// PurgeOnce runs one purge now, if this process gets the lease: the expired deliveries with
// their attempts, then the expired events that no delivery refers to any more, then the space
// they took is given back.
func (p *Purger) PurgeOnce(ctx context.Context) (Result, error) {
	start := time.Now()
	res := Result{Cutoff: p.cfg.NowFunc().Add(-p.cfg.Retention)}
	if err := p.renew(ctx); errors.Is(err, errLeaseLost) {
		return Result{Skipped: true}, nil
	} else if err != nil {
		return res, err
	}
	defer func() {
		if err := p.leases.Release(context.WithoutCancel(ctx), LeaseName, p.cfg.Holder); err != nil {
			p.cfg.Logger.WarnContext(ctx, "releasing the retention lease failed; it expires by itself", "err", err)
		}
	}()
	err := p.purge(ctx, &res)
	res.Took = time.Since(start)
	if err != nil {
		return res, err
	}
	p.metrics.lastDuration.Set(res.Took.Seconds())
	p.metrics.lastSuccess.Set(float64(time.Now().UnixNano()) / 1e9)
	return res, nil
}

func (p *Purger) purge(ctx context.Context, res *Result) error {
	var from time.Time
	size := p.cfg.BatchSize
	for {
		if err := p.renew(ctx); err != nil {
			return err
		}
		t := time.Now()
		got, err := p.deliveries.PurgeDeliveries(ctx, from, res.Cutoff, size)
		if err != nil {
			return err
		}
		from = got.Last
		took := time.Since(t)
		res.Batches++
		res.Deliveries += got.Deliveries
		res.Attempts += got.Attempts
		p.metrics.batch(took, tableDeliveries, got.Deliveries, tableAttempts, got.Attempts)
		if got.Deliveries < size {
			break
		}
		size = p.resize(size, took)
		if err := p.pause(ctx, took); err != nil {
			return err
		}
	}
	var cursor store.EventCursor
	size = p.cfg.BatchSize
	for {
		if err := p.renew(ctx); err != nil {
			return err
		}
		t := time.Now()
		got, err := p.events.PurgePublished(ctx, res.Cutoff, cursor, size)
		if err != nil {
			return err
		}
		took := time.Since(t)
		res.Batches++
		res.Events += got.Deleted
		p.metrics.batch(took, tableEvents, got.Deleted, "", 0)
		if got.Scanned < size {
			break
		}
		size = p.resize(size, took)
		cursor = got.Next
		if err := p.pause(ctx, took); err != nil {
			return err
		}
	}
	if err := p.renew(ctx); err != nil {
		return err
	}
	n, err := p.deliveries.PruneTombstones(ctx, res.Cutoff)
	if err != nil {
		return err
	}
	res.Tombstones = int(n)
	p.metrics.purged.WithLabelValues(tableTombstones).Add(float64(n))
	switch {
	case res.Rows() > 0:
		t := time.Now()
		err := p.reclaim(ctx)
		res.Reclaim = time.Since(t)
		if err != nil {
			return err
		}
	case !p.prepared:
		// The first purge prepares even with nothing to delete: a new SQLite database is
		// switched to incremental auto-vacuum while it is small, not when its first rows
		// expire, by which time it may be too large to switch while running.
		if _, err := p.deliveries.ReclaimSpace(ctx, 0); err != nil && !errors.Is(err, store.ErrVacuumNeeded) {
			return err
		}
	}
	p.prepared = true
	return p.measureOldest(ctx)
}

// minBatch is the least batch size resize goes down to.
const minBatch = 50

// resize is the next batch's size after one of size rows took `took`.
func (p *Purger) resize(size int, took time.Duration) int {
	switch {
	case took > 2*p.cfg.BatchTarget:
		return max(size/2, min(minBatch, p.cfg.BatchSize))
	case took < p.cfg.BatchTarget/2:
		return min(size*2, p.cfg.BatchSize)
	}
	return size
}

// reclaim gives the deleted rows' space back, step by step, pausing between steps as between
// batches.
func (p *Purger) reclaim(ctx context.Context) error {
	for {
		if err := p.renew(ctx); err != nil {
			return err
		}
		t := time.Now()
		left, err := p.deliveries.ReclaimSpace(ctx, p.cfg.ReclaimPages)
		if errors.Is(err, store.ErrVacuumNeeded) {
			p.vacuumWarn.Do(func() {
				p.cfg.Logger.WarnContext(ctx, "purged space is reused but the database file does not shrink", "err", err)
			})
			return nil
		}
		if err != nil {
			return err
		}
		if left == 0 {
			return nil
		}
		if err := p.pause(ctx, time.Since(t)); err != nil {
			return err
		}
	}
}

func (p *Purger) measureOldest(ctx context.Context) error {
	d, err := p.deliveries.OldestFinishedDelivery(ctx)
	if err != nil {
		return err
	}
	e, err := p.events.OldestPublished(ctx)
	if err != nil {
		return fmt.Errorf("reading the oldest published event: %w", err)
	}
	p.metrics.oldest.set(tableDeliveries, d)
	p.metrics.oldest.set(tableEvents, e)
	return nil
}

// renew takes or renews the lease; errLeaseLost when another process has it.
func (p *Purger) renew(ctx context.Context) error {
	now := p.cfg.NowFunc()
	ok, err := p.leases.TryAcquire(ctx, LeaseName, p.cfg.Holder, now, now.Add(p.cfg.LeaseTTL))
	if err != nil {
		return err
	}
	if !ok {
		return errLeaseLost
	}
	return nil
}

// pause waits after a batch that took `took`: at least as long, and at least Pause.
func (p *Purger) pause(ctx context.Context, took time.Duration) error {
	if p.afterBatch != nil {
		p.afterBatch()
	}
	t := time.NewTimer(max(took, p.cfg.Pause))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
