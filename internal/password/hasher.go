package password

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"
)

// ErrBusy is returned when a password check or hash could not start within the Hasher's
// MaxWait: too many run at once. Handlers answer 503 with Retry-After.
var ErrBusy = errors.New("too many password checks at once")

// HasherConfig configures a Hasher. Zero fields take the defaults documented on each.
type HasherConfig struct {
	// Slots is how many full-cost hashes (SlotMemory each) may run at once (default
	// max(2, NumCPU)). Argon2id takes its whole memory cost for each hash, so this bounds the
	// process's memory under any flood of sign-ins.
	Slots int
	// SlotMemory is the memory of one slot in KiB (default DefaultParams.Memory). A hash takes
	// room in proportion to its own memory cost, so cheap imported hashes do not take a whole
	// slot each.
	SlotMemory uint32
	// MaxWait is how long an interactive hash or check waits for room before ErrBusy
	// (default 2s).
	MaxWait time.Duration
	// RetryAfter is what callers tell clients refused with ErrBusy (default 2s).
	RetryAfter time.Duration
	// MaxPending is how many requests may hold a place from Admit at once (default 16 ×
	// Slots, about a second of full-cost hashes): beyond it a request is refused at once,
	// before the store work it does ahead of its hash.
	MaxPending int
}

// The defaults of HasherConfig.
const (
	DefaultMaxWait    = 2 * time.Second
	DefaultRetryAfter = 2 * time.Second
)

// WithDefaults returns c with every zero field at its default.
func (c HasherConfig) WithDefaults() HasherConfig {
	if c.Slots <= 0 {
		c.Slots = max(2, runtime.NumCPU())
	}
	if c.SlotMemory == 0 {
		c.SlotMemory = DefaultParams.Memory
	}
	if c.MaxWait <= 0 {
		c.MaxWait = DefaultMaxWait
	}
	if c.RetryAfter <= 0 {
		c.RetryAfter = DefaultRetryAfter
	}
	if c.MaxPending <= 0 {
		c.MaxPending = 16 * c.Slots
	}
	return c
}

// Hasher runs argon2id within a bound on the memory all hashes of a process take at once:
// Slots × SlotMemory KiB. Every password hash and check of the API goes through one Hasher
// (sign-in, the dummy check of unknown accounts, setting passwords, CSV imports, background
// upgrades), so a flood of any of them waits or is refused instead of exhausting memory.
//
// Waiting is first in, first out: a full-cost check queued behind cheap import hashes gets
// the next room that is large enough.
type Hasher struct {
	cfg      HasherConfig
	sem      *semaphore.Weighted
	capacity int64
	pending  atomic.Int64
}

// NewHasher returns a Hasher.
func NewHasher(cfg HasherConfig) *Hasher {
	cfg = cfg.WithDefaults()
	capacity := int64(cfg.Slots) * int64(cfg.SlotMemory)
	return &Hasher{cfg: cfg, sem: semaphore.NewWeighted(capacity), capacity: capacity}
}

// Config returns the effective configuration.
func (h *Hasher) Config() HasherConfig { return h.cfg }

// weight is the room a hash of memKiB takes: its memory, at most the whole capacity.
func (h *Hasher) weight(memKiB uint32) int64 { return min(max(int64(memKiB), 1), h.capacity) }

// Acquire waits up to MaxWait for room for one hash of memKiB and returns the function that
// gives it back; ErrBusy when none came in time, ctx's error when ctx ended first. Hash and
// Verify call it; it is exported for callers that must hold room while doing their own work
// of that size.
func (h *Hasher) Acquire(ctx context.Context, memKiB uint32) (release func(), err error) {
	w := h.weight(memKiB)
	wctx, cancel := context.WithTimeout(ctx, h.cfg.MaxWait)
	defer cancel()
	if err := h.sem.Acquire(wctx, w); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, ErrBusy
	}
	return func() { h.sem.Release(w) }, nil
}

// Admit takes a place for a request that is about to check or hash a password, without
// waiting; ErrBusy when MaxPending requests hold one. Sign-in takes it before its rate-limit
// writes and account lookup, so that under a flood the requests that would only end in
// ErrBusy after MaxWait are refused at once, without touching the store, and the time a
// refused request takes stays short however large the flood. leave gives the place back.
func (h *Hasher) Admit() (leave func(), err error) {
	if h.pending.Add(1) > int64(h.cfg.MaxPending) {
		h.pending.Add(-1)
		return nil, ErrBusy
	}
	var once sync.Once
	return func() { once.Do(func() { h.pending.Add(-1) }) }, nil
}

// tryAcquire takes room only if it is free now and nobody waits for it.
func (h *Hasher) tryAcquire(memKiB uint32) (release func(), ok bool) {
	w := h.weight(memKiB)
	if !h.sem.TryAcquire(w) {
		return nil, false
	}
	return func() { h.sem.Release(w) }, true
}

// Hash hashes pw with p within the bound.
func (h *Hasher) Hash(ctx context.Context, p Params, pw string) (string, error) {
	release, err := h.Acquire(ctx, p.Memory)
	if err != nil {
		return "", err
	}
	defer release()
	return HashWith(p, pw)
}

// Verify checks pw against a stored hash within the bound (see Verify).
func (h *Hasher) Verify(ctx context.Context, hash, pw string) (bool, error) {
	mem, err := hashMemory(hash)
	if err != nil {
		return false, err
	}
	release, err := h.Acquire(ctx, mem)
	if err != nil {
		return false, err
	}
	defer release()
	return Verify(hash, pw)
}

// UpgradeIdle wraps a weaker hash to the costs of p (see Upgrade) only when the bound has
// room at once and nothing waits for it; otherwise it returns ErrBusy without waiting. A
// background job that uses it never delays a sign-in by more than the one hash it runs.
func (h *Hasher) UpgradeIdle(hash string, p Params) (string, error) {
	mem, err := hashMemory(hash)
	if err != nil {
		return "", err
	}
	release, ok := h.tryAcquire(max(mem, p.Memory))
	if !ok {
		return "", ErrBusy
	}
	defer release()
	return Upgrade(hash, p)
}

// hashMemory is the largest memory cost verifying hash takes, in KiB.
func hashMemory(hash string) (uint32, error) {
	d, err := decodeAny(hash)
	if err != nil {
		return 0, err
	}
	if d.inner != nil {
		return max(d.p.Memory, d.inner.p.Memory), nil
	}
	return d.p.Memory, nil
}

// String describes the bound for the start-up log.
func (h *Hasher) String() string {
	return fmt.Sprintf("%d slots of %d KiB, wait %s, %d pending", h.cfg.Slots, h.cfg.SlotMemory, h.cfg.MaxWait, h.cfg.MaxPending)
}
