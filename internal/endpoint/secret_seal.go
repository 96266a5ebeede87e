package endpoint

import (
	"context"
	"fmt"

	"github.com/dispatch24/dispatch24/internal/secret"
)

// SealSecrets seals with the current key every webhook secret stored plain (before this
// release, or by an older binary during a rolling upgrade) or sealed with a previous key, and
// returns how many values it wrote; with apply false it writes nothing and returns how many it
// would. Each write is a compare-and-set on the old value, so concurrent starts, rotations and
// the engine's updates are safe; a value sealed with a key the keyring lacks stops it with a
// *secret.KeyError. Binaries call it at start, first with apply false for every table.
func (s *Store) SealSecrets(ctx context.Context, apply bool) (int, error) {
	q := s.db.Driver.Webhooks()
	prefix := s.keys.SealedPrefix()
	written := 0
	// A rotation between the read and the write moves a value into previous_secret: the next
	// pass finds it.
	for range 3 {
		todo, err := q.StaleSecrets(ctx, prefix)
		if err != nil {
			return written, fmt.Errorf("webhook secrets: %w", err)
		}
		n := 0
		for _, r := range todo {
			for _, c := range []struct {
				previous bool
				old      *string
			}{{false, &r.Secret}, {true, r.PreviousSecret}} {
				if c.old == nil {
					continue
				}
				sealed, changed, err := s.keys.Reseal(secret.WebhookSecret(r.ID), *c.old)
				if err != nil {
					return written, fmt.Errorf("webhook secrets: %w", err)
				}
				if !changed {
					continue
				}
				if !apply {
					n++
					continue
				}
				ok, err := q.ReplaceSecret(ctx, r.ID, c.previous, *c.old, sealed)
				if err != nil {
					return written, fmt.Errorf("webhook secrets: %w", err)
				}
				if ok {
					n++
				}
			}
		}
		written += n
		if !apply || len(todo) == 0 || n == 0 {
			break
		}
	}
	return written, nil
}
