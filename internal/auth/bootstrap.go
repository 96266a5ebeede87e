package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/dispatch24/dispatch24/internal/httpapi"
	"github.com/dispatch24/dispatch24/internal/store"
)

// FirstAdmin describes the admin EnsureAdmin creates.
type FirstAdmin struct {
	// Email is ADMIN_EMAIL.
	Email string
	// Password is ADMIN_PASSWORD; empty: a random one, printed once.
	Password string
	// PublicURL is the base of the sign-in example (PUBLIC_URL).
	PublicURL string
	// Given names the ADMIN_* variables the operator set (config.Config.AdminGiven): when a
	// global account already exists they are ignored, and EnsureAdmin says so.
	Given []string
}

// EnsureAdmin creates the first admin when no global account exists and prints to stdout how
// to sign in: the e-mail, the password if it was generated (this is the only time it is
// shown) and a curl example. With any global account present it creates nothing (logging that
// a given ADMIN_* is ignored), so it is safe on every start and on every replica.
func (s *Service) EnsureAdmin(ctx context.Context, a FirstAdmin, stdout io.Writer) error {
	n, err := s.accounts().CountUsers(ctx)
	if err != nil {
		return fmt.Errorf("first admin: %w", err)
	}
	if n > 0 {
		if len(a.Given) > 0 {
			// Otherwise a changed ADMIN_PASSWORD would be ignored without a word.
			s.logger.WarnContext(ctx, "ADMIN_EMAIL and ADMIN_PASSWORD only create the first admin; a global account exists, so they are ignored (to set a password: api reset-password --email E)",
				"ignored", strings.Join(a.Given, ","))
		}
		return nil
	}
	email, errs := s.checkEmail(a.Email)
	if len(errs) > 0 {
		return fmt.Errorf("first admin: ADMIN_EMAIL %q: %s", a.Email, errs[0].Message)
	}
	pw, generated := a.Password, false
	if pw == "" {
		pw, generated = randomString(18), true
	} else if errs := s.checkPassword(pw); len(errs) > 0 {
		return fmt.Errorf("first admin: ADMIN_PASSWORD %s", errs[0].Message)
	}
	hash, err := s.cfg.Hasher.Hash(ctx, s.cfg.PasswordParams, pw)
	if err != nil {
		return fmt.Errorf("first admin: hashing password: %w", err)
	}
	now := s.cfg.NowFunc().UTC().Truncate(time.Microsecond)
	u := store.User{
		ID: newID("usr_"), Email: email, Name: "Admin", PasswordHash: hash, Roles: []string{httpapi.RoleAdmin}, Surveys: []string{},
		CreatedAt: now, UpdatedAt: now,
	}
	created := false
	err = s.db.Driver.InTx(ctx, func(tx store.Executor) error {
		// Check again under the writer: another replica may have won the race.
		if n, err := tx.Accounts().CountUsers(ctx); err != nil || n > 0 {
			return err
		}
		created = true
		return tx.Accounts().InsertUser(ctx, u)
	})
	if errors.Is(err, store.ErrConflict) {
		return nil // a replica created the same admin meanwhile
	}
	if err != nil {
		return fmt.Errorf("first admin: %w", err)
	}
	if !created {
		return nil
	}
	s.logger.InfoContext(ctx, "first admin created", "user_id", u.ID, "email", email, "password_generated", generated)
	return printSignIn(stdout, email, pw, generated, a.PublicURL)
}

func printSignIn(w io.Writer, email, pw string, generated bool, publicURL string) error {
	var b strings.Builder
	b.WriteString("\nDispatch24: created the first admin account.\n")
	fmt.Fprintf(&b, "  e-mail:   %s\n", email)
	if generated {
		fmt.Fprintf(&b, "  password: %s\n  (generated; shown only this once — store it, or create another admin and delete this one)\n", pw)
	} else {
		b.WriteString("  password: the value of ADMIN_PASSWORD\n")
	}
	base := strings.TrimRight(publicURL, "/")
	if base == "" {
		base = "http://127.0.0.1:8080"
	}
	b.WriteString("Sign in (returns a refresh token; POST it in X-Auth-Token to /api/refresh for an access token):\n")
	if generated {
		body, _ := json.Marshal(map[string]string{"email": email, "password": pw})
		fmt.Fprintf(&b, "  curl -sS -X POST %s/api/signin -H 'Content-Type: application/json' -d %s\n\n",
			shellQuote(base), shellQuote(string(body)))
	} else {
		// Double quotes so the shell expands $ADMIN_PASSWORD; the e-mail is escaped for them.
		fmt.Fprintf(&b, "  curl -sS -X POST %s/api/signin -H 'Content-Type: application/json' -d \"{\\\"email\\\":\\\"%s\\\",\\\"password\\\":\\\"$ADMIN_PASSWORD\\\"}\"\n\n",
			shellQuote(base), dquoteEscape(jsonEscape(email)))
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("first admin: printing sign-in instructions: %w", err)
	}
	return nil
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// jsonEscape returns s as the inside of a JSON string.
func jsonEscape(s string) string {
	b, _ := json.Marshal(s)
	return string(b[1 : len(b)-1])
}

// dquoteEscape escapes s for the inside of a double-quoted shell string.
func dquoteEscape(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "$", `\$`, "`", "\\`")
	return r.Replace(s)
}
