package app

import (
	"context"
	"fmt"
	"sync"
)

// Component is a long-running part of a process.
type Component struct {
	Name string
	Run  func(ctx context.Context) error
}

// RunAll runs every component until ctx ends or one fails; a failure cancels the others. It
// returns after all have returned, with the first error.
func RunAll(ctx context.Context, comps ...Component) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for _, c := range comps {
		wg.Add(1)
		go func(c Component) {
			defer wg.Done()
			if err := c.Run(ctx); err != nil && ctx.Err() == nil {
				once.Do(func() { first = fmt.Errorf("%s: %w", c.Name, err) })
				cancel()
			}
		}(c)
	}
	wg.Wait()
	return first
}
