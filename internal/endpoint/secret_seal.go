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
	type stale struct {
		id, cur string
		prev    *string
	}
	prefix := s.keys.SealedPrefix()
	written := 0
	// A rotation between the read and the write moves a value into previous_secret: the next
	// pass finds it.
	for range 3 {
		rows, err := s.db.Query(ctx, `SELECT id, secret, previous_secret FROM webhooks
			WHERE substr(secret, 1, $2) <> $1 OR substr(previous_secret, 1, $2) <> $1`, prefix, len(prefix))
		if err != nil {
			return written, fmt.Errorf("webhook secrets: %w", err)
		}
		var todo []stale
		for rows.Next() {
			var r stale
			if err := rows.Scan(&r.id, &r.cur, &r.prev); err != nil {
				rows.Close()
				return written, fmt.Errorf("webhook secrets: %w", err)
			}
			todo = append(todo, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return written, fmt.Errorf("webhook secrets: %w", err)
		}
		n := 0
		for _, r := range todo {
			for _, c := range []struct {
				column string
				old    *string
			}{{"secret", &r.cur}, {"previous_secret", r.prev}} {
				if c.old == nil {
					continue
				}
				sealed, changed, err := s.keys.Reseal(secret.WebhookSecret(r.id), *c.old)
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
				k, err := s.db.Exec(ctx, `UPDATE webhooks SET `+c.column+` = $3 WHERE id = $1 AND `+c.column+` = $2`,
					r.id, *c.old, sealed)
				if err != nil {
					return written, fmt.Errorf("webhook secrets: %w", err)
				}
				n += int(k)
			}
		}
		written += n
		if !apply || len(todo) == 0 || n == 0 {
			break
		}
	}
	return written, nil
}
