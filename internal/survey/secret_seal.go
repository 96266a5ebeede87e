package survey

import (
	"context"
	"fmt"

	"github.com/dispatch24/dispatch24/internal/secret"
)

// SealSecrets seals with the current key every survey jwtSecret stored plain (before this
// release, or by an older binary during a rolling upgrade) or sealed with a previous key, and
// returns how many it wrote; with apply false it writes nothing and returns how many it would.
// Each write is a compare-and-set on the old value, so concurrent starts and PATCHes are safe;
// a value sealed with a key the keyring lacks stops it with a *secret.KeyError. Binaries call
// it at start, first with apply false for every table.
func (st *Store) SealSecrets(ctx context.Context, apply bool) (int, error) {
	prefix := st.keys.SealedPrefix()
	rows, err := st.db.Query(ctx, `SELECT id, jwt_secret FROM surveys WHERE substr(jwt_secret, 1, $2) <> $1`, prefix, len(prefix))
	if err != nil {
		return 0, fmt.Errorf("survey jwt secrets: %w", err)
	}
	type stale struct{ id, old string }
	var todo []stale
	for rows.Next() {
		var r stale
		if err := rows.Scan(&r.id, &r.old); err != nil {
			rows.Close()
			return 0, fmt.Errorf("survey jwt secrets: %w", err)
		}
		todo = append(todo, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("survey jwt secrets: %w", err)
	}
	written := 0
	for _, r := range todo {
		sealed, changed, err := st.keys.Reseal(secret.SurveyJWTSecret(r.id), r.old)
		if err != nil {
			return written, fmt.Errorf("survey jwt secrets: %w", err)
		}
		if !changed {
			continue
		}
		if !apply {
			written++
			continue
		}
		n, err := st.db.Exec(ctx, `UPDATE surveys SET jwt_secret = $3 WHERE id = $1 AND jwt_secret = $2`, r.id, r.old, sealed)
		if err != nil {
			return written, fmt.Errorf("survey jwt secrets: %w", err)
		}
		written += int(n)
	}
	return written, nil
}
