package drivertest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/internal/store"
)

func testAccounts(t *testing.T, open Opener) {
	t.Run("users", func(t *testing.T) { testAccountsUsers(t, open) })
	t.Run("refresh_tokens", func(t *testing.T) { testAccountsRefreshTokens(t, open) })
	t.Run("personal_access_tokens", func(t *testing.T) { testAccountsPATs(t, open) })
	t.Run("signin_failures", func(t *testing.T) { testAccountsSignInFailures(t, open) })
}

// accT0 is the tests' clock: a time with microseconds and nanoseconds, in a zone other than UTC,
// so that storing to the microsecond and reading back in UTC are both checked.
var accT0 = time.Date(2026, 11, 30, 18, 0, 0, 123456789, time.FixedZone("CET", 3600))

// micro is what the store gives back for t.
func accMicro(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// accSeedSurvey writes a survey row (the surveys family's table) for the accounts to refer to.
func accSeedSurvey(t *testing.T, db *store.DB, id string) {
	t.Helper()
	if _, err := db.Exec(context.Background(), `INSERT INTO surveys (id, name, created_at, updated_at) VALUES ($1, $1, 0, 0)`, id); err != nil {
		t.Fatalf("seeding survey %s: %v", id, err)
	}
}

// accSeedRespondent writes a respondents row (the surveys family's table); hash nil: no password.
func accSeedRespondent(t *testing.T, db *store.DB, id, surveyID, username string, hash *string, token string, disabled bool) {
	t.Helper()
	if _, err := db.Exec(context.Background(), `INSERT INTO respondents (id, survey_id, username, password_hash, auth_token, disabled, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, 0, 0)`, id, surveyID, username, hash, token, disabled); err != nil {
		t.Fatalf("seeding respondent %s: %v", id, err)
	}
}

func accUser(id, email string, roles []string, surveys ...string) store.User {
	return store.User{
		ID: id, Email: email, Name: "Name of " + id, PasswordHash: "hash-" + id, Roles: roles,
		Surveys: surveys, CreatedAt: accT0, UpdatedAt: accT0.Add(time.Second),
	}
}

// stored is u as the store gives it back.
func accStored(u store.User) store.User {
	u.CreatedAt, u.UpdatedAt = accMicro(u.CreatedAt), accMicro(u.UpdatedAt)
	if u.Surveys == nil {
		u.Surveys = []string{}
	}
	if u.Roles == nil {
		u.Roles = []string{}
	}
	return u
}

func accEqualUser(t *testing.T, what string, got, want store.User) {
	t.Helper()
	if got.ID != want.ID || got.Email != want.Email || got.Name != want.Name || got.PasswordHash != want.PasswordHash ||
		!slices.Equal(got.Roles, want.Roles) || !slices.Equal(got.Surveys, want.Surveys) || got.Disabled != want.Disabled ||
		!got.CreatedAt.Equal(want.CreatedAt) || !got.UpdatedAt.Equal(want.UpdatedAt) ||
		got.CreatedAt.Location() != time.UTC || got.UpdatedAt.Location() != time.UTC {
		t.Fatalf("%s:\n got %+v\nwant %+v", what, got, want)
	}
	if got.Surveys == nil || got.Roles == nil {
		t.Fatalf("%s: nil Roles or Surveys (want empty slices): %+v", what, got)
	}
}

func accWantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: err = %v, want %v", what, err, target)
	}
}

func accMust(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func testAccountsUsers(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	acc := db.Driver.Accounts()
	accSeedSurvey(t, db, "s1")
	accSeedSurvey(t, db, "s2")
	accSeedSurvey(t, db, "s3")

	if n, err := acc.CountUsers(ctx); err != nil || n != 0 {
		t.Fatalf("CountUsers on an empty table = %d, %v", n, err)
	}
	if users, err := acc.Users(ctx); err != nil || users == nil || len(users) != 0 {
		t.Fatalf("Users on an empty table = %#v, %v; want an empty, non-nil slice", users, err)
	}

	admin := accUser("usr_a", "zed@example.org", []string{"admin"})
	staff := accUser("usr_s", "amy@example.org", []string{"staff"}, "s2", "s1")
	both := accUser("usr_b", "bob@example.org", []string{"admin", "staff"}, "s3")
	for _, u := range []store.User{admin, staff, both} {
		accMust(t, "InsertUser "+u.ID, acc.InsertUser(ctx, u))
	}
	accWantErr(t, "InsertUser with a taken e-mail",
		acc.InsertUser(ctx, accUser("usr_x", "zed@example.org", []string{"staff"})), store.ErrConflict)
	accWantErr(t, "InsertUser with a taken id",
		acc.InsertUser(ctx, accUser("usr_a", "new@example.org", []string{"staff"})), store.ErrConflict)

	// Reads: by id with the surveys sorted, by e-mail without them.
	got, err := acc.UserByID(ctx, "usr_s")
	accMust(t, "UserByID", err)
	wantStaff := accStored(staff)
	wantStaff.Surveys = []string{"s1", "s2"}
	accEqualUser(t, "UserByID", got, wantStaff)
	got, err = acc.UserByEmail(ctx, "amy@example.org")
	accMust(t, "UserByEmail", err)
	noSurveys := wantStaff
	noSurveys.Surveys = []string{}
	accEqualUser(t, "UserByEmail", got, noSurveys)
	_, err = acc.UserByID(ctx, "usr_none")
	accWantErr(t, "UserByID of an unknown id", err, store.ErrNotFound)
	_, err = acc.UserByEmail(ctx, "AMY@example.org")
	accWantErr(t, "UserByEmail is exact (callers lower-case)", err, store.ErrNotFound)

	access, err := acc.UserAccess(ctx, "usr_b")
	accMust(t, "UserAccess", err)
	if access.Email != both.Email || !slices.Equal(access.Roles, []string{"admin", "staff"}) || access.Disabled ||
		access.PasswordHash != "" || len(access.Surveys) != 0 {
		t.Fatalf("UserAccess = %+v", access)
	}
	_, err = acc.UserAccess(ctx, "usr_none")
	accWantErr(t, "UserAccess of an unknown id", err, store.ErrNotFound)

	if s, err := acc.UserSurveys(ctx, "usr_s"); err != nil || !slices.Equal(s, []string{"s1", "s2"}) {
		t.Fatalf("UserSurveys = %v, %v", s, err)
	}
	if s, err := acc.UserSurveys(ctx, "usr_a"); err != nil || s == nil || len(s) != 0 {
		t.Fatalf("UserSurveys of an account without surveys = %#v, %v; want an empty, non-nil slice", s, err)
	}

	// Users: ordered by e-mail, each with its own surveys.
	users, err := acc.Users(ctx)
	accMust(t, "Users", err)
	if len(users) != 3 {
		t.Fatalf("Users returned %d accounts, want 3", len(users))
	}
	accEqualUser(t, "Users[0]", users[0], wantStaff)
	accEqualUser(t, "Users[1]", users[1], accStored(both))
	accEqualUser(t, "Users[2]", users[2], accStored(admin))

	if n, err := acc.CountUsers(ctx); err != nil || n != 3 {
		t.Fatalf("CountUsers = %d, %v; want 3", n, err)
	}
	if n, err := acc.CountEnabledWithRole(ctx, "admin"); err != nil || n != 2 {
		t.Fatalf("CountEnabledWithRole(admin) = %d, %v; want 2", n, err)
	}
	if n, err := acc.CountEnabledWithRole(ctx, "staff"); err != nil || n != 2 {
		t.Fatalf("CountEnabledWithRole(staff) = %d, %v; want 2", n, err)
	}
	if n, err := acc.CountEnabledWithRole(ctx, "adm"); err != nil || n != 0 {
		t.Fatalf("CountEnabledWithRole(adm) = %d, %v; want 0 (whole role names only)", n, err)
	}

	// UpdateUser writes every column but created_at, and leaves the surveys alone.
	upd := both
	upd.Email, upd.Name, upd.PasswordHash, upd.Roles, upd.Disabled = "bea@example.org", "Bea", "hash-new", []string{"staff"}, true
	upd.CreatedAt, upd.UpdatedAt = accT0.Add(time.Hour), accT0.Add(2*time.Hour)
	accMust(t, "UpdateUser", acc.UpdateUser(ctx, upd))
	got, err = acc.UserByID(ctx, "usr_b")
	accMust(t, "UserByID after UpdateUser", err)
	wantUpd := accStored(upd)
	wantUpd.CreatedAt = accMicro(both.CreatedAt)
	accEqualUser(t, "UserByID after UpdateUser", got, wantUpd)
	if n, err := acc.CountEnabledWithRole(ctx, "admin"); err != nil || n != 1 {
		t.Fatalf("CountEnabledWithRole(admin) after disabling one = %d, %v; want 1", n, err)
	}
	if n, err := acc.CountEnabledWithRole(ctx, "staff"); err != nil || n != 1 {
		t.Fatalf("CountEnabledWithRole(staff) after disabling one = %d, %v; want 1 (disabled ones do not count)", n, err)
	}
	clash := upd
	clash.Email = "zed@example.org"
	accWantErr(t, "UpdateUser to a taken e-mail", acc.UpdateUser(ctx, clash), store.ErrConflict)
	ghost := upd
	ghost.ID, ghost.Email = "usr_none", "ghost@example.org"
	accWantErr(t, "UpdateUser of an unknown id", acc.UpdateUser(ctx, ghost), store.ErrNotFound)

	// SetUserSurveys replaces the assignments, also with none and with many (several chunks).
	accMust(t, "SetUserSurveys", acc.SetUserSurveys(ctx, "usr_s", []string{"s3"}))
	if s, _ := acc.UserSurveys(ctx, "usr_s"); !slices.Equal(s, []string{"s3"}) {
		t.Fatalf("UserSurveys after SetUserSurveys = %v, want [s3]", s)
	}
	accMust(t, "SetUserSurveys to none", acc.SetUserSurveys(ctx, "usr_s", nil))
	if s, _ := acc.UserSurveys(ctx, "usr_s"); len(s) != 0 {
		t.Fatalf("UserSurveys after SetUserSurveys(nil) = %v, want none", s)
	}
	many := make([]string, 1203)
	for i := range many {
		many[i] = fmt.Sprintf("m%04d", i)
	}
	for part := range slices.Chunk(many, 300) {
		args := make([]any, 0, 4*len(part))
		for _, id := range part {
			args = append(args, id, id, 0, 0)
		}
		if _, err := db.Exec(ctx, "INSERT INTO surveys (id, name, created_at, updated_at) VALUES "+
			store.Placeholders(len(part), 4, 1), args...); err != nil {
			t.Fatalf("seeding surveys: %v", err)
		}
	}
	accMust(t, "SetUserSurveys with many", acc.SetUserSurveys(ctx, "usr_s", many))
	if s, _ := acc.UserSurveys(ctx, "usr_s"); !slices.Equal(s, many) {
		t.Fatalf("UserSurveys after SetUserSurveys(many) has %d ids, want %d", len(s), len(many))
	}

	// DeleteUser takes the assignments and personal access tokens with it.
	accMust(t, "InsertPersonalAccessToken", acc.InsertPersonalAccessToken(ctx, store.PersonalAccessToken{
		ID: "pat_1", UserID: "usr_s", Name: "ci", Hash: "h1", CreatedAt: accT0, ExpiresAt: accT0.Add(time.Hour),
	}))
	accMust(t, "DeleteUser", acc.DeleteUser(ctx, "usr_s"))
	accWantErr(t, "DeleteUser again", acc.DeleteUser(ctx, "usr_s"), store.ErrNotFound)
	_, err = acc.UserByID(ctx, "usr_s")
	accWantErr(t, "UserByID of a deleted account", err, store.ErrNotFound)
	_, err = acc.PersonalAccessTokenByHash(ctx, "h1")
	accWantErr(t, "PersonalAccessTokenByHash of a deleted account's token", err, store.ErrNotFound)
	var left int
	accMust(t, "counting assignments", db.QueryRow(ctx, "SELECT count(*) FROM user_surveys WHERE user_id = $1", "usr_s").Scan(&left))
	if left != 0 {
		t.Fatalf("%d assignments of a deleted account are left", left)
	}

	// In a transaction that fails, nothing is written.
	boom := errors.New("boom")
	err = db.Driver.InTx(ctx, func(tx store.Executor) error {
		if err := tx.Accounts().InsertUser(ctx, accUser("usr_t", "tx@example.org", []string{"staff"}, "s1")); err != nil {
			return err
		}
		if n, err := tx.Accounts().CountUsers(ctx); err != nil || n != 3 {
			return fmt.Errorf("CountUsers inside the transaction = %d, %v; want 3", n, err)
		}
		return boom
	})
	accWantErr(t, "InTx", err, boom)
	_, err = acc.UserByID(ctx, "usr_t")
	accWantErr(t, "UserByID of a rolled-back account", err, store.ErrNotFound)
}

func testAccountsRefreshTokens(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	acc := db.Driver.Accounts()
	accSeedSurvey(t, db, "s1")
	accSeedSurvey(t, db, "s2")
	accMust(t, "InsertUser", acc.InsertUser(ctx, accUser("usr_a", "a@example.org", []string{"admin", "staff"})))
	accSeedRespondent(t, db, "rsp_1", "s1", "alice", nil, "tok-1", false)
	accSeedRespondent(t, db, "rsp_2", "s1", "bob", nil, "tok-2", true)
	accSeedRespondent(t, db, "rsp_3", "s2", "carol", nil, "tok-3", false)

	rt := func(jti, user, kind string, expires time.Duration) store.RefreshToken {
		return store.RefreshToken{JTI: jti, UserID: user, Kind: kind, CreatedAt: accT0, ExpiresAt: accT0.Add(expires)}
	}
	for _, r := range []store.RefreshToken{
		rt("j-a1", "usr_a", store.AccountGlobal, time.Hour),
		rt("j-a2", "usr_a", store.AccountGlobal, 2*time.Hour),
		rt("j-r1", "rsp_1", store.AccountRespondent, time.Hour),
		rt("j-r2", "rsp_2", store.AccountRespondent, time.Hour),
		rt("j-r3", "rsp_3", store.AccountRespondent, time.Hour),
		rt("j-gone", "usr_gone", store.AccountGlobal, time.Hour),
		// A respondent's id that is also a global account's: the kind decides the join.
		rt("j-mixed", "usr_a", store.AccountRespondent, time.Hour),
	} {
		accMust(t, "InsertRefreshToken "+r.JTI, acc.InsertRefreshToken(ctx, r))
	}
	accWantErr(t, "InsertRefreshToken with a used jti", acc.InsertRefreshToken(ctx, rt("j-a1", "usr_a", store.AccountGlobal, time.Hour)), store.ErrConflict)

	get := func(jti string) store.RefreshTokenState {
		t.Helper()
		s, err := acc.RefreshToken(ctx, jti)
		accMust(t, "RefreshToken "+jti, err)
		if s.JTI != jti {
			t.Fatalf("RefreshToken(%s).JTI = %q", jti, s.JTI)
		}
		return s
	}
	s := get("j-a1")
	if s.UserID != "usr_a" || s.Kind != store.AccountGlobal || !s.CreatedAt.Equal(accMicro(accT0)) || !s.ExpiresAt.Equal(accMicro(accT0.Add(time.Hour))) ||
		s.ExpiresAt.Location() != time.UTC || !s.RevokedAt.IsZero() || !s.Exists || s.Disabled ||
		!slices.Equal(s.Roles, []string{"admin", "staff"}) || s.SurveyID != "" || s.Username != "" {
		t.Fatalf("RefreshToken of a global account = %+v", s)
	}
	if s := get("j-r1"); !s.Exists || s.Disabled || s.SurveyID != "s1" || s.Username != "alice" || len(s.Roles) != 0 {
		t.Fatalf("RefreshToken of a respondent = %+v", s)
	}
	if s := get("j-r2"); !s.Exists || !s.Disabled || s.Username != "bob" {
		t.Fatalf("RefreshToken of a disabled respondent = %+v", s)
	}
	if s := get("j-gone"); s.Exists || s.Disabled {
		t.Fatalf("RefreshToken of a deleted account = %+v, want Exists false", s)
	}
	if s := get("j-mixed"); s.Exists {
		t.Fatalf("RefreshToken of kind respondent for a global account's id = %+v, want Exists false", s)
	}
	_, err := acc.RefreshToken(ctx, "j-none")
	accWantErr(t, "RefreshToken of an unknown jti", err, store.ErrNotFound)

	// Revoking one: only the owner's, only once.
	if ok, err := acc.RevokeRefreshToken(ctx, "j-a1", "usr_other", accT0); err != nil || ok {
		t.Fatalf("RevokeRefreshToken by another account = %v, %v; want false", ok, err)
	}
	if ok, err := acc.RevokeRefreshToken(ctx, "j-a1", "usr_a", accT0.Add(time.Minute)); err != nil || !ok {
		t.Fatalf("RevokeRefreshToken = %v, %v; want true", ok, err)
	}
	if ok, err := acc.RevokeRefreshToken(ctx, "j-a1", "usr_a", accT0.Add(2*time.Minute)); err != nil || ok {
		t.Fatalf("RevokeRefreshToken again = %v, %v; want false", ok, err)
	}
	if s := get("j-a1"); !s.RevokedAt.Equal(accMicro(accT0.Add(time.Minute))) {
		t.Fatalf("RevokedAt = %v, want the first revocation's time %v", s.RevokedAt, accMicro(accT0.Add(time.Minute)))
	}
	if ok, err := acc.RevokeRefreshToken(ctx, "j-none", "usr_a", accT0); err != nil || ok {
		t.Fatalf("RevokeRefreshToken of an unknown jti = %v, %v; want false", ok, err)
	}

	// Revoking an account's: the live ones get the time, a revoked one keeps its own.
	accMust(t, "RevokeUserRefreshTokens", acc.RevokeUserRefreshTokens(ctx, "usr_a", accT0.Add(time.Hour)))
	if s := get("j-a2"); !s.RevokedAt.Equal(accMicro(accT0.Add(time.Hour))) {
		t.Fatalf("j-a2 RevokedAt = %v", s.RevokedAt)
	}
	if s := get("j-a1"); !s.RevokedAt.Equal(accMicro(accT0.Add(time.Minute))) {
		t.Fatalf("j-a1 RevokedAt changed to %v", s.RevokedAt)
	}

	// Several accounts at once; none is a no-op.
	accMust(t, "RevokeRefreshTokensOf none", acc.RevokeRefreshTokensOf(ctx, nil, accT0))
	if s := get("j-r1"); !s.RevokedAt.IsZero() {
		t.Fatalf("RevokeRefreshTokensOf(nil) revoked j-r1")
	}
	accMust(t, "RevokeRefreshTokensOf", acc.RevokeRefreshTokensOf(ctx, []string{"rsp_1", "rsp_none"}, accT0.Add(3*time.Minute)))
	if s := get("j-r1"); !s.RevokedAt.Equal(accMicro(accT0.Add(3 * time.Minute))) {
		t.Fatalf("j-r1 RevokedAt = %v", s.RevokedAt)
	}
	if s := get("j-r2"); !s.RevokedAt.IsZero() {
		t.Fatalf("RevokeRefreshTokensOf revoked another account's token")
	}

	// A survey's respondents: rsp_2 of s1, not rsp_3 of s2.
	accMust(t, "RevokeSurveyRefreshTokens", acc.RevokeSurveyRefreshTokens(ctx, "s1", accT0.Add(4*time.Minute)))
	if s := get("j-r2"); !s.RevokedAt.Equal(accMicro(accT0.Add(4 * time.Minute))) {
		t.Fatalf("j-r2 RevokedAt = %v", s.RevokedAt)
	}
	if s := get("j-r3"); !s.RevokedAt.IsZero() {
		t.Fatalf("RevokeSurveyRefreshTokens revoked another survey's respondent's token")
	}

	// Pruning: expired at or before the time, revoked or not.
	n, err := acc.PruneRefreshTokens(ctx, accT0.Add(time.Hour))
	accMust(t, "PruneRefreshTokens", err)
	if n != 6 {
		t.Fatalf("PruneRefreshTokens removed %d, want 6 (all but j-a2)", n)
	}
	get("j-a2")
	_, err = acc.RefreshToken(ctx, "j-r3")
	accWantErr(t, "RefreshToken of a pruned token", err, store.ErrNotFound)
	if n, err := acc.PruneRefreshTokens(ctx, accT0.Add(time.Hour)); err != nil || n != 0 {
		t.Fatalf("PruneRefreshTokens again = %d, %v; want 0", n, err)
	}
}

func testAccountsPATs(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	acc := db.Driver.Accounts()
	accMust(t, "InsertUser", acc.InsertUser(ctx, accUser("usr_a", "a@example.org", []string{"staff"})))
	accMust(t, "InsertUser", acc.InsertUser(ctx, accUser("usr_b", "b@example.org", []string{"admin"})))

	if l, err := acc.PersonalAccessTokens(ctx, "usr_a"); err != nil || l == nil || len(l) != 0 {
		t.Fatalf("PersonalAccessTokens with none = %#v, %v; want an empty, non-nil slice", l, err)
	}
	pat := func(id, user, hash string, created time.Time) store.PersonalAccessToken {
		return store.PersonalAccessToken{ID: id, UserID: user, Name: "name " + id, Hash: hash, CreatedAt: created, ExpiresAt: created.Add(24 * time.Hour)}
	}
	// Listed by creation time, then id.
	p2 := pat("pat_2", "usr_a", "h2", accT0)
	p1 := pat("pat_1", "usr_a", "h1", accT0.Add(time.Second))
	p3 := pat("pat_3", "usr_a", "h3", accT0)
	pb := pat("pat_b", "usr_b", "hb", accT0)
	for _, p := range []store.PersonalAccessToken{p1, p2, p3, pb} {
		accMust(t, "InsertPersonalAccessToken "+p.ID, acc.InsertPersonalAccessToken(ctx, p))
	}
	accWantErr(t, "InsertPersonalAccessToken with a used hash", acc.InsertPersonalAccessToken(ctx, pat("pat_x", "usr_a", "h1", accT0)), store.ErrConflict)

	l, err := acc.PersonalAccessTokens(ctx, "usr_a")
	accMust(t, "PersonalAccessTokens", err)
	if len(l) != 3 || l[0].ID != "pat_2" || l[1].ID != "pat_3" || l[2].ID != "pat_1" {
		t.Fatalf("PersonalAccessTokens = %+v, want pat_2, pat_3, pat_1", l)
	}
	if p := l[2]; p.Name != "name pat_1" || p.UserID != "usr_a" || p.Hash != "" || !p.CreatedAt.Equal(accMicro(p1.CreatedAt)) ||
		!p.ExpiresAt.Equal(accMicro(p1.ExpiresAt)) || p.ExpiresAt.Location() != time.UTC || !p.LastUsedAt.IsZero() {
		t.Fatalf("PersonalAccessTokens[2] = %+v", p)
	}

	o, err := acc.PersonalAccessTokenByHash(ctx, "h1")
	accMust(t, "PersonalAccessTokenByHash", err)
	if o.ID != "pat_1" || o.UserID != "usr_a" || o.Hash != "h1" || o.Email != "a@example.org" || !slices.Equal(o.Roles, []string{"staff"}) ||
		o.Disabled || !o.ExpiresAt.Equal(accMicro(p1.ExpiresAt)) || !o.LastUsedAt.IsZero() {
		t.Fatalf("PersonalAccessTokenByHash = %+v", o)
	}
	_, err = acc.PersonalAccessTokenByHash(ctx, "h-none")
	accWantErr(t, "PersonalAccessTokenByHash of an unknown hash", err, store.ErrNotFound)

	// The owner's state is read now.
	u, err := acc.UserByID(ctx, "usr_a")
	accMust(t, "UserByID", err)
	u.Disabled = true
	accMust(t, "UpdateUser", acc.UpdateUser(ctx, u))
	if o, err := acc.PersonalAccessTokenByHash(ctx, "h1"); err != nil || !o.Disabled {
		t.Fatalf("PersonalAccessTokenByHash of a disabled owner = %+v, %v", o, err)
	}

	// Touching: written when never used or stale, skipped while fresh.
	used := func() time.Time {
		t.Helper()
		o, err := acc.PersonalAccessTokenByHash(ctx, "h1")
		accMust(t, "PersonalAccessTokenByHash", err)
		return o.LastUsedAt
	}
	accMust(t, "TouchPersonalAccessToken", acc.TouchPersonalAccessToken(ctx, "pat_1", accT0.Add(time.Hour), accT0))
	if got := used(); !got.Equal(accMicro(accT0.Add(time.Hour))) || got.Location() != time.UTC {
		t.Fatalf("LastUsedAt = %v, want %v", got, accMicro(accT0.Add(time.Hour)))
	}
	// Used at accT0+1h; staleBefore accT0+1h: not before it, so fresh.
	accMust(t, "TouchPersonalAccessToken while fresh", acc.TouchPersonalAccessToken(ctx, "pat_1", accT0.Add(90*time.Minute), accT0.Add(time.Hour)))
	if got := used(); !got.Equal(accMicro(accT0.Add(time.Hour))) {
		t.Fatalf("a fresh use was overwritten: LastUsedAt = %v", got)
	}
	accMust(t, "TouchPersonalAccessToken when stale", acc.TouchPersonalAccessToken(ctx, "pat_1", accT0.Add(2*time.Hour), accT0.Add(time.Hour+time.Microsecond)))
	if got := used(); !got.Equal(accMicro(accT0.Add(2 * time.Hour))) {
		t.Fatalf("a stale use was kept: LastUsedAt = %v", got)
	}
	if l, _ := acc.PersonalAccessTokens(ctx, "usr_a"); !l[2].LastUsedAt.Equal(accMicro(accT0.Add(2 * time.Hour))) {
		t.Fatalf("PersonalAccessTokens LastUsedAt = %v", l[2].LastUsedAt)
	}
	accMust(t, "TouchPersonalAccessToken of an unknown id", acc.TouchPersonalAccessToken(ctx, "pat_none", accT0, accT0))

	// Deleting: only the owner's.
	accWantErr(t, "DeletePersonalAccessToken by another account", acc.DeletePersonalAccessToken(ctx, "usr_b", "pat_1"), store.ErrNotFound)
	accMust(t, "DeletePersonalAccessToken", acc.DeletePersonalAccessToken(ctx, "usr_a", "pat_1"))
	accWantErr(t, "DeletePersonalAccessToken again", acc.DeletePersonalAccessToken(ctx, "usr_a", "pat_1"), store.ErrNotFound)
	accMust(t, "DeleteUserPersonalAccessTokens", acc.DeleteUserPersonalAccessTokens(ctx, "usr_a"))
	if l, err := acc.PersonalAccessTokens(ctx, "usr_a"); err != nil || len(l) != 0 {
		t.Fatalf("PersonalAccessTokens after DeleteUserPersonalAccessTokens = %v, %v", l, err)
	}
	if l, err := acc.PersonalAccessTokens(ctx, "usr_b"); err != nil || len(l) != 1 || l[0].ID != "pat_b" {
		t.Fatalf("another account's tokens = %v, %v; want pat_b", l, err)
	}
	accMust(t, "DeleteUserPersonalAccessTokens with none", acc.DeleteUserPersonalAccessTokens(ctx, "usr_a"))
}

func testAccountsSignInFailures(t *testing.T, open Opener) {
	ctx := context.Background()
	db := open(t)
	acc := db.Driver.Accounts()
	const limit = 3
	window := 10 * time.Minute
	take := func(key, attempt string, at time.Time) bool {
		t.Helper()
		ok, err := acc.TakeSignInFailure(ctx, key, attempt, at, at.Add(-window), limit)
		accMust(t, "TakeSignInFailure", err)
		return ok
	}
	recent := func(key string, at time.Time, n int) []time.Time {
		t.Helper()
		r, err := acc.RecentSignInFailures(ctx, key, at.Add(-window), n)
		accMust(t, "RecentSignInFailures", err)
		return r
	}

	if r := recent("k", accT0, 10); len(r) != 0 {
		t.Fatalf("RecentSignInFailures with none = %v", r)
	}
	for i := range limit {
		if !take("k", fmt.Sprint("a", i), accT0.Add(time.Duration(i)*time.Second)) {
			t.Fatalf("TakeSignInFailure %d under the limit was refused", i)
		}
	}
	now := accT0.Add(time.Minute)
	if take("k", "a-over", now) {
		t.Fatal("TakeSignInFailure over the limit was recorded")
	}
	if !take("other", "b0", now) {
		t.Fatal("another key is limited by k's failures")
	}
	// Newest first, limited to n, in UTC to the microsecond.
	r := recent("k", now, limit+1)
	want := []time.Time{accMicro(accT0.Add(2 * time.Second)), accMicro(accT0.Add(time.Second)), accMicro(accT0)}
	if len(r) != len(want) {
		t.Fatalf("RecentSignInFailures = %v, want %v", r, want)
	}
	for i := range want {
		if !r[i].Equal(want[i]) || r[i].Location() != time.UTC {
			t.Fatalf("RecentSignInFailures = %v, want %v", r, want)
		}
	}
	if r := recent("k", now, 2); len(r) != 2 || !r[0].Equal(want[0]) {
		t.Fatalf("RecentSignInFailures limited to 2 = %v", r)
	}
	// Failures leave the window: after accT0+window only those later than it count.
	later := accT0.Add(window).Add(time.Second)
	if r := recent("k", later, 10); len(r) != 1 || !r[0].Equal(want[0]) {
		t.Fatalf("RecentSignInFailures once two left the window = %v, want [%v]", r, want[0])
	}
	if !take("k", "a-later", later) {
		t.Fatal("TakeSignInFailure refused once failures left the window")
	}

	// Giving back one attempt's row, then all of a key's.
	accMust(t, "DeleteSignInAttempt", acc.DeleteSignInAttempt(ctx, "k", "a-later"))
	if r := recent("k", later, 10); len(r) != 1 {
		t.Fatalf("after DeleteSignInAttempt: %v, want one failure", r)
	}
	accMust(t, "DeleteSignInAttempt of an unknown attempt", acc.DeleteSignInAttempt(ctx, "k", "a-none"))
	accMust(t, "DeleteSignInFailures", acc.DeleteSignInFailures(ctx, "k"))
	if r := recent("k", now, 10); len(r) != 0 {
		t.Fatalf("after DeleteSignInFailures: %v", r)
	}
	if r := recent("other", now, 10); len(r) != 1 {
		t.Fatalf("DeleteSignInFailures removed another key's: %v", r)
	}

	// Pruning: at or before the time.
	for i, at := range []time.Time{accT0, accT0.Add(time.Second), accT0.Add(2 * time.Second)} {
		take("p", fmt.Sprint("p", i), at)
	}
	n, err := acc.PruneSignInFailures(ctx, accT0.Add(time.Second))
	accMust(t, "PruneSignInFailures", err)
	if n != 2 {
		t.Fatalf("PruneSignInFailures removed %d, want 2", n)
	}
	if r := recent("p", accT0.Add(time.Minute), 10); len(r) != 1 || !r[0].Equal(accMicro(accT0.Add(2*time.Second))) {
		t.Fatalf("after PruneSignInFailures: %v", r)
	}
}
