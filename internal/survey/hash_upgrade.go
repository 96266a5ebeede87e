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
		rows, err := s.cfg.DB.Query(ctx, `SELECT id, password_hash FROM respondents
			WHERE id > $1 AND password_hash LIKE $2 AND password_hash NOT LIKE $3
			ORDER BY id LIMIT $4`, after, "$argon2id$%", fullPrefix+"%", hashUpgradePage)
		if err != nil {
			return upgraded, fmt.Errorf("reading weaker password hashes: %w", err)
		}
		type row struct{ id, hash string }
		var page []row
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.id, &r.hash); err != nil {
				rows.Close()
				return upgraded, fmt.Errorf("reading weaker password hashes: %w", err)
			}
			page = append(page, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return upgraded, fmt.Errorf("reading weaker password hashes: %w", err)
		}
		for _, r := range page {
			if !password.Weaker(r.hash, full) {
				continue
			}
			h, err := s.upgradeWhenIdle(ctx, r.hash)
			if errors.Is(err, password.ErrMalformedHash) {
				s.logger.WarnContext(ctx, "unreadable password hash left as it is", "user_id", r.id)
				continue
			}
			if err != nil {
				return upgraded, err
			}
			n, err := s.cfg.DB.Exec(ctx, `UPDATE respondents SET password_hash = $1 WHERE id = $2 AND password_hash = $3`, h, r.id, r.hash)
			if err != nil {
				return upgraded, fmt.Errorf("storing an upgraded password hash: %w", err)
			}
			upgraded += int(n)
		}
		if len(page) < hashUpgradePage {
			return upgraded, nil
		}
		after = page[len(page)-1].id
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
