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
	todo, err := st.drv.Surveys().JWTSecretsNotPrefixed(ctx, st.keys.SealedPrefix())
	if err != nil {
		return 0, err
	}
	written := 0
	for _, r := range todo {
		sealed, changed, err := st.keys.Reseal(secret.SurveyJWTSecret(r.SurveyID), r.JWTSecret)
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
		swapped, err := st.drv.Surveys().SwapJWTSecret(ctx, r.SurveyID, r.JWTSecret, sealed)
		if err != nil {
			return written, err
		}
		if swapped {
			written++
		}
	}
	return written, nil
}
