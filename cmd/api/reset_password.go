package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strings"

	"github.com/dispatch24/dispatch24/internal/app"
	"github.com/dispatch24/dispatch24/internal/auth"
	"github.com/dispatch24/dispatch24/internal/config"
	"github.com/dispatch24/dispatch24/internal/password"
	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/postgres"
	"github.com/dispatch24/dispatch24/internal/store/sqlite"
	"github.com/dispatch24/dispatch24/internal/survey"
	"github.com/dispatch24/dispatch24/internal/telemetry"
)

const resetUsage = "usage: api reset-password --email E [--stdin]"

// resetPassword is `api reset-password --email E [--stdin]` (CONTRACT §8 Operations): the way
// back from a lost admin password. It opens only the configured store (DATABASE_URL, or the
// SQLite file in DATA_DIR; never NATS, so it runs beside a running api), sets a new password
// for the global account with that e-mail and enables it. The password is generated and
// printed once, or with --stdin read from the first line of standard input and not printed.
// As a reset by no principal it revokes the account's refresh tokens and deletes its personal
// access tokens. It needs neither TOKEN_SECRET nor SECRETS_KEY: it signs no token and opens no
// sealed secret. Exit status 2 for a bad command line, 1 when the account does not exist.
func resetPassword(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	var email string
	var fromStdin bool
	cfg, err := config.LoadCommand("reset-password", args, getenv, runtime.NumCPU(), stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&email, "email", "", "e-mail address of the global account")
		fs.BoolVar(&fromStdin, "stdin", false, "read the new password from the first line of standard input instead of generating one")
	})
	if err != nil {
		return err
	}
	if strings.TrimSpace(email) == "" {
		return fmt.Errorf("%w: reset-password: --email is required (%s)", app.ErrUsage, resetUsage)
	}
	var pw string
	if fromStdin {
		if pw, err = readPassword(stdin); err != nil {
			return fmt.Errorf("%w: reset-password: --stdin: %v", app.ErrUsage, err)
		}
	}
	logger := slog.New(telemetry.LogHandler(cfg.NewLogger(stderr).Handler()))

	var db *store.DB
	if cfg.EmbeddedStore() {
		// Opening would create an empty database: a missing file has no account to reset.
		if _, err := os.Stat(cfg.SQLitePath()); errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("reset-password: %w: there is no store at %s (DATA_DIR=%s; set DATABASE_URL for PostgreSQL)",
				auth.ErrNoAccount, cfg.SQLitePath(), cfg.DataDir)
		}
		db, err = sqlite.Open(ctx, cfg.SQLitePath())
	} else {
		db, err = postgres.Open(ctx, cfg.DatabaseURL)
	}
	if err != nil {
		return fmt.Errorf("reset-password: %w", err)
	}
	defer db.Close()

	// auth.Service wants a token key for its codec; this command signs and verifies no token,
	// so a throwaway one serves and TOKEN_SECRET is not needed.
	throwaway := make([]byte, 32)
	_, _ = rand.Read(throwaway)
	accounts, err := auth.New(db, auth.Config{
		// Respondents are read for sign-in only, and this command signs nobody in; their
		// reads need no keyring (it opens survey jwtSecrets only).
		Respondents: survey.NewStore(db, nil),
		Hasher:      password.NewHasher(password.HasherConfig{}),
		Secret:      throwaway,
		Issuer:      cfg.TokenIssuer,
		AccessTTL:   cfg.AccessTokenTTL,
		RefreshTTL:  cfg.RefreshTokenTTL,
	}, logger)
	if err != nil {
		return err
	}
	newPassword, u, err := accounts.ResetPassword(ctx, email, pw)
	switch {
	case errors.Is(err, auth.ErrInvalid):
		return fmt.Errorf("%w: reset-password: %v", app.ErrUsage, err)
	case err != nil:
		return fmt.Errorf("reset-password: %w", err)
	}
	fmt.Fprintf(stdout, "Password of %s reset: the account is enabled; its refresh tokens and personal access tokens are revoked.\n", u.Email)
	if !fromStdin {
		fmt.Fprintf(stdout, "New password (shown only this once): %s\n", newPassword)
	}
	return nil
}

// readPassword reads the first line of r (up to 4 KiB), without its line ending.
func readPassword(r io.Reader) (string, error) {
	if r == nil {
		return "", errors.New("no standard input")
	}
	line, err := bufio.NewReaderSize(io.LimitReader(r, 4097), 4097).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("reading standard input: %w", err)
	}
	if len(line) > 4096 {
		return "", errors.New("the first line of standard input is over 4 KiB")
	}
	line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	if line == "" {
		return "", errors.New("standard input has no password on its first line")
	}
	return line, nil
}
