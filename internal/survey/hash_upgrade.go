package survey

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/dispatch24/dispatch24/internal/password"
)

// hashUpgradePage is how many respondents one query of the upgrade pass reads.
const hashUpgradePage = 200

// DefaultHashUpgradeInterval is how often RunHashUpgrades looks for weaker hashes besides
// after each import in this process (other replicas' imports are found this way).
const DefaultHashUpgradeInterval = time.Hour

// UpgradeImportedHashes raises every respondent password hash weaker than PasswordParams (a
// CSV import's) to the full cost without the password, by wrapping it (password.Upgrade: the
// stored hash becomes argon2id-onion, and the original password still signs in). It runs one
// hash at a time, only when the process's hashing bound has room and nobody waits for it, so
// it never holds back a sign-in by more than one hash. A row whose hash changed meanwhile (a
// sign-in upgraded it, a new password was set) is left as it is. It returns how many hashes
// it upgraded.
func (s *Service) UpgradeImportedHashes(ctx context.Context) (int, error) {
	full := s.cfg.PasswordParams
	// Hashes with exactly the full costs are skipped by the query; anything else that is
	// plain argon2id is read and judged by password.Weaker.
	fullPrefix := fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$", full.Memory, full.Time, full.Threads)
	upgraded, after := 0, ""
	for {
		page, err := s.store.drv.Surveys().WeakerHashCandidates(ctx, after, fullPrefix, hashUpgradePage)
		if err != nil {
			return upgraded, err
		}
		for _, r := range page {
			if !password.Weaker(r.PasswordHash, full) {
				continue
			}
			h, err := s.upgradeWhenIdle(ctx, r.PasswordHash)
			if errors.Is(err, password.ErrMalformedHash) {
				s.logger.WarnContext(ctx, "unreadable password hash left as it is", "user_id", r.ID)
				continue
			}
			if err != nil {
				return upgraded, err
			}
			swapped, err := s.store.drv.Surveys().SwapPasswordHash(ctx, r.ID, r.PasswordHash, h)
			if err != nil {
				return upgraded, fmt.Errorf("storing an upgraded password hash: %w", err)
			}
			if swapped {
				upgraded++
			}
		}
		if len(page) < hashUpgradePage {
			return upgraded, nil
		}
		after = page[len(page)-1].ID
	}
}

// upgradeWhenIdle retries password.Hasher.UpgradeIdle until the bound has room, backing off
// while sign-ins keep it busy.
func (s *Service) upgradeWhenIdle(ctx context.Context, hash string) (string, error) {
	backoff := 10 * time.Millisecond
	for {
		h, err := s.cfg.Hasher.UpgradeIdle(hash, s.cfg.PasswordParams)
		if !errors.Is(err, password.ErrBusy) {
			return h, err
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

// RunHashUpgrades runs UpgradeImportedHashes at start, after each import this process
// makes, and every HashUpgradeInterval, until ctx ends. Every replica may run it: an
// upgrade only replaces the hash it read.
func (s *Service) RunHashUpgrades(ctx context.Context) error {
	t := time.NewTicker(s.cfg.HashUpgradeInterval)
	defer t.Stop()
	for {
		n, err := s.UpgradeImportedHashes(ctx)
		if err != nil && ctx.Err() == nil {
			s.logger.WarnContext(ctx, "upgrading imported password hashes", "err", err, "upgraded", n)
		} else if n > 0 {
			s.logger.InfoContext(ctx, "upgraded imported password hashes", "upgraded", n)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-s.imported:
		}
	}
}
