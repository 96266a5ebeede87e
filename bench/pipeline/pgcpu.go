package main

import (
	"context"
	"sync"
	"time"
)

// pgCPU follows the CPU time of PostgreSQL processes: the backends serving this run's
// connections (told apart by application_name), and the server's background processes (WAL
// writer, checkpointer, background writer), which every database on the server shares. It
// samples every 200ms, so a backend that exits loses at most its last 200ms.
type pgCPU struct {
	w    *world
	mu   sync.Mutex
	ours map[int][2]time.Duration // pid → first and last sample
	aux  map[int][2]time.Duration
	stop func()
}

func (w *world) startPGCPU(ctx context.Context) *pgCPU {
	p := &pgCPU{w: w, ours: map[int][2]time.Duration{}, aux: map[int][2]time.Duration{}}
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			p.sample(ctx)
			select {
			case <-ctx.Done():
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	p.stop = func() { cancel(); <-done }
	return p
}

func (p *pgCPU) sample(ctx context.Context) {
	rows, err := p.w.db.Query(ctx, `SELECT pid, coalesce(application_name, '') = $1
		FROM pg_stat_activity WHERE application_name = $1 OR backend_type IN ('walwriter', 'checkpointer', 'background writer')`, p.w.appName)
	if err != nil {
		return
	}
	type proc struct {
		pid  int
		ours bool
	}
	var ps []proc
	for rows.Next() {
		var x proc
		if rows.Scan(&x.pid, &x.ours) == nil {
			ps = append(ps, x)
		}
	}
	rows.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, x := range ps {
		c := procCPU(x.pid)
		if c == 0 {
			continue
		}
		m := p.aux
		if x.ours {
			m = p.ours
		}
		v, ok := m[x.pid]
		if !ok {
			v[0] = c
		}
		v[1] = c
		m[x.pid] = v
	}
}

// total returns the CPU time used so far by this run's backends and by the shared
// background processes, since each was first seen.
func (p *pgCPU) total() (ours, aux time.Duration) {
	p.sample(context.Background())
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, v := range p.ours {
		ours += v[1] - v[0]
	}
	for _, v := range p.aux {
		aux += v[1] - v[0]
	}
	return ours, aux
}
