package drivertest

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/internal/store"
)

func testSurveys(t *testing.T, open Opener) {
	t.Helper()
	t.Run("surveys", func(t *testing.T) { testSurveyRows(t, open(t)) })
	t.Run("jwt secrets", func(t *testing.T) { testSurveyJWTSecrets(t, open(t)) })
	t.Run("respondents", func(t *testing.T) { testRespondentRows(t, open(t)) })
	t.Run("respondent pages", func(t *testing.T) { testRespondentPages(t, open(t)) })
	t.Run("import", func(t *testing.T) { testRespondentImport(t, open(t)) })
	t.Run("password hashes", func(t *testing.T) { testRespondentHashes(t, open(t)) })
	t.Run("refresh token revocation", func(t *testing.T) { testRespondentRevocation(t, open(t)) })
}

// svTime is a stored time: microseconds, UTC.
func svTime(s int) time.Time { return time.Date(2026, 11, 30, 12, 0, s, 123456000, time.UTC) }

func svSurvey(id string) store.Survey {
	return store.Survey{ID: id, Name: "Survey " + id, RedirectURL: "https://example.com/{identifier}",
		RedirectIdentifier: "username", AuthURLTokenLength: 32, CreatedAt: svTime(0), UpdatedAt: svTime(1)}
}

func svRespondent(surveyID, username string, at time.Time) store.Respondent {
	return store.Respondent{ID: "res_" + surveyID + "_" + username, SurveyID: surveyID, Username: username,
		Name: "Name of " + username, AuthToken: "tok_" + surveyID + "_" + username, CreatedAt: at, UpdatedAt: at}
}

func svCreateSurvey(t *testing.T, db *store.DB, s store.Survey) {
	t.Helper()
	if err := db.Driver.Surveys().CreateSurvey(t.Context(), s); err != nil {
		t.Fatal(err)
	}
}

func svCreateRespondent(t *testing.T, db *store.DB, r store.Respondent) {
	t.Helper()
	if err := db.Driver.Surveys().CreateRespondent(t.Context(), r); err != nil {
		t.Fatal(err)
	}
}

func svIDs(list []store.Survey) []string {
	out := make([]string, len(list))
	for i := range list {
		out[i] = list[i].ID
	}
	return out
}

func testSurveyRows(t *testing.T, db *store.DB) {
	ctx := t.Context()
	sv := db.Driver.Surveys()

	if _, err := sv.Survey(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing survey: %v", err)
	}
	if list, err := sv.AllSurveys(ctx); err != nil || list == nil || len(list) != 0 {
		t.Fatalf("no surveys: %v %v", list, err)
	}
	b := svSurvey("b")
	b.AllowGenUsers, b.JWTSecret = true, "sealed:b"
	for _, s := range []store.Survey{b, svSurvey("c"), svSurvey("a")} {
		svCreateSurvey(t, db, s)
	}
	if err := sv.CreateSurvey(ctx, svSurvey("a")); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("a taken id: %v", err)
	}
	got, err := sv.Survey(ctx, "b")
	if err != nil || !reflect.DeepEqual(got, b) {
		t.Fatalf("read back %+v %v, want %+v", got, err, b)
	}

	all, err := sv.AllSurveys(ctx)
	if err != nil || !slices.Equal(svIDs(all), []string{"a", "b", "c"}) {
		t.Fatalf("all surveys: %v %v", svIDs(all), err)
	}
	some, err := sv.SurveysByID(ctx, []string{"c", "nope", "a"})
	if err != nil || !slices.Equal(svIDs(some), []string{"a", "c"}) {
		t.Fatalf("surveys by id: %v %v", svIDs(some), err)
	}
	if none, err := sv.SurveysByID(ctx, nil); err != nil || none == nil || len(none) != 0 {
		t.Fatalf("no ids: %v %v", none, err)
	}

	if ok, err := sv.SurveyExists(ctx, "a"); err != nil || !ok {
		t.Fatalf("a exists: %v %v", ok, err)
	}
	if ok, err := sv.SurveyExists(ctx, "nope"); err != nil || ok {
		t.Fatalf("nope exists: %v %v", ok, err)
	}
	// More ids than one statement binds, the missing ones in the order given.
	ids := []string{"z9", "a"}
	for i := range 1200 {
		ids = append(ids, fmt.Sprintf("m%04d", i))
	}
	ids = append(ids, "c", "b")
	missing, err := sv.MissingSurveys(ctx, ids)
	if err != nil || len(missing) != 1201 || missing[0] != "z9" || missing[1] != "m0000" || missing[1200] != "m1199" {
		t.Fatalf("missing: %d %v", len(missing), err)
	}
	if missing, err := sv.MissingSurveys(ctx, []string{"a", "b"}); err != nil || len(missing) != 0 {
		t.Fatalf("none missing: %v %v", missing, err)
	}

	// An update writes every setting and UpdatedAt, never CreatedAt.
	upd := got
	upd.Name, upd.AllowGenUsers, upd.JWTSecret = "Renamed", false, ""
	upd.RedirectURL, upd.RedirectIdentifier, upd.AuthURLTokenLength = "", "userId", 64
	upd.CreatedAt, upd.UpdatedAt = svTime(50), svTime(9)
	if err := sv.UpdateSurvey(ctx, upd); err != nil {
		t.Fatal(err)
	}
	got, _ = sv.Survey(ctx, "b")
	want := upd
	want.CreatedAt = b.CreatedAt
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("updated %+v, want %+v", got, want)
	}
	if err := sv.UpdateSurvey(ctx, svSurvey("nope")); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("update of a missing survey: %v", err)
	}

	// SurveyForUpdate in a read-modify-write transaction, and a rollback that leaves no trace.
	err = db.Driver.InTx(ctx, func(tx store.Executor) error {
		s, err := tx.Surveys().SurveyForUpdate(ctx, "c")
		if err != nil {
			return err
		}
		s.Name = "In a transaction"
		return tx.Surveys().UpdateSurvey(ctx, s)
	})
	if got, _ := sv.Survey(ctx, "c"); err != nil || got.Name != "In a transaction" {
		t.Fatalf("after the transaction: %+v %v", got, err)
	}
	boom := errors.New("boom")
	err = db.Driver.InTx(ctx, func(tx store.Executor) error {
		if err := tx.Surveys().DeleteSurvey(ctx, "c"); err != nil {
			return err
		}
		return boom
	})
	if ok, _ := sv.SurveyExists(ctx, "c"); !errors.Is(err, boom) || !ok {
		t.Fatalf("rolled back delete: %v, exists %v", err, ok)
	}
	err = db.Driver.InTx(ctx, func(tx store.Executor) error {
		_, err := tx.Surveys().SurveyForUpdate(ctx, "nope")
		return err
	})
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("locking a missing survey: %v", err)
	}

	// Deletion cascades to the respondents.
	svCreateRespondent(t, db, svRespondent("c", "alice", svTime(2)))
	if err := sv.DeleteSurvey(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	if _, err := sv.Respondent(ctx, "c", "alice"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("respondent of a deleted survey: %v", err)
	}
	if err := sv.DeleteSurvey(ctx, "c"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
}

func testSurveyJWTSecrets(t *testing.T, db *store.DB) {
	ctx := t.Context()
	sv := db.Driver.Surveys()
	for id, secret := range map[string]string{"none": "", "plain": "a-plain-secret", "old": "v1:sealed", "cur": "v2:sealed"} {
		s := svSurvey(id)
		s.JWTSecret = secret
		svCreateSurvey(t, db, s)
	}
	if got, err := sv.SealedJWTSecret(ctx, "none"); err != nil || got != "" {
		t.Fatalf("no secret: %q %v", got, err)
	}
	if got, err := sv.SealedJWTSecret(ctx, "old"); err != nil || got != "v1:sealed" {
		t.Fatalf("old secret: %q %v", got, err)
	}
	if _, err := sv.SealedJWTSecret(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing survey: %v", err)
	}

	// Those without the current prefix, by id; a survey without a secret is not among them.
	stale, err := sv.JWTSecretsNotPrefixed(ctx, "v2:")
	want := []store.SurveyJWTSecret{{SurveyID: "old", JWTSecret: "v1:sealed"}, {SurveyID: "plain", JWTSecret: "a-plain-secret"}}
	if err != nil || !reflect.DeepEqual(stale, want) {
		t.Fatalf("stale secrets %+v %v", stale, err)
	}

	// A compare-and-set: a stale old value writes nothing.
	if ok, err := sv.SwapJWTSecret(ctx, "old", "v1:sealed", "v2:resealed"); err != nil || !ok {
		t.Fatalf("swap: %v %v", ok, err)
	}
	if ok, err := sv.SwapJWTSecret(ctx, "old", "v1:sealed", "v2:other"); err != nil || ok {
		t.Fatalf("stale swap: %v %v", ok, err)
	}
	if ok, err := sv.SwapJWTSecret(ctx, "nope", "x", "y"); err != nil || ok {
		t.Fatalf("swap of a missing survey: %v %v", ok, err)
	}
	if got, _ := sv.SealedJWTSecret(ctx, "old"); got != "v2:resealed" {
		t.Fatalf("after the swap: %q", got)
	}
	if stale, err := sv.JWTSecretsNotPrefixed(ctx, "v2:"); err != nil || len(stale) != 1 || stale[0].SurveyID != "plain" {
		t.Fatalf("stale after the swap: %+v %v", stale, err)
	}
}

func testRespondentRows(t *testing.T, db *store.DB) {
	ctx := t.Context()
	sv := db.Driver.Surveys()
	svCreateSurvey(t, db, svSurvey("s1"))
	svCreateSurvey(t, db, svSurvey("s2"))

	alice := svRespondent("s1", "alice", svTime(2))
	alice.PasswordHash = "$argon2id$v=19$m=512,t=1,p=1$x$y"
	alice.CustomFields = []store.CustomField{{Name: "cohort", Value: "A"}, {Name: "note", Value: "ünïcode \"quoted\""}}
	svCreateRespondent(t, db, alice)
	bob := svRespondent("s1", "bob", svTime(3)) // token sign-in only, no custom fields
	svCreateRespondent(t, db, bob)
	svCreateRespondent(t, db, svRespondent("s2", "alice", svTime(4))) // the same username in another survey

	dup := svRespondent("s1", "alice", svTime(5))
	dup.ID, dup.AuthToken = "res_other", "tok_other"
	if err := sv.CreateRespondent(ctx, dup); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("a taken username: %v", err)
	}
	dup = svRespondent("s1", "carol", svTime(5))
	dup.AuthToken = alice.AuthToken
	if err := sv.CreateRespondent(ctx, dup); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("a taken auth token: %v", err)
	}

	got, err := sv.Respondent(ctx, "s1", "alice")
	if err != nil || !reflect.DeepEqual(got, alice) {
		t.Fatalf("alice: %+v %v, want %+v", got, err, alice)
	}
	if got, err := sv.Respondent(ctx, "s1", "bob"); err != nil || got.PasswordHash != "" || len(got.CustomFields) != 0 {
		t.Fatalf("bob: %+v %v", got, err)
	}
	if got, err := sv.RespondentByAuthToken(ctx, alice.AuthToken); err != nil || got.ID != alice.ID {
		t.Fatalf("by token: %+v %v", got, err)
	}
	if _, err := sv.RespondentByAuthToken(ctx, "tok_nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown token: %v", err)
	}
	if _, err := sv.Respondent(ctx, "s1", "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown username: %v", err)
	}
	if _, err := sv.Respondent(ctx, "s3", "alice"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown survey: %v", err)
	}

	// UpdateRespondent writes the mutable columns only, after a locked read.
	err = db.Driver.InTx(ctx, func(tx store.Executor) error {
		r, err := tx.Surveys().RespondentForUpdate(ctx, "s1", "alice")
		if err != nil {
			return err
		}
		r.Name, r.PasswordHash, r.Disabled = "Alice B.", "", true
		r.CustomFields = nil
		r.UpdatedAt = svTime(20)
		r.AuthToken, r.CreatedAt = "tok_ignored", svTime(40) // not written
		return tx.Surveys().UpdateRespondent(ctx, r)
	})
	if err != nil {
		t.Fatal(err)
	}
	want := alice
	want.Name, want.PasswordHash, want.Disabled, want.CustomFields, want.UpdatedAt = "Alice B.", "", true, []store.CustomField{}, svTime(20)
	if got, _ := sv.Respondent(ctx, "s1", "alice"); !reflect.DeepEqual(got, want) {
		t.Fatalf("updated %+v, want %+v", got, want)
	}
	err = db.Driver.InTx(ctx, func(tx store.Executor) error {
		_, err := tx.Surveys().RespondentForUpdate(ctx, "s1", "nope")
		return err
	})
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("locking a missing respondent: %v", err)
	}
	if err := sv.UpdateRespondent(ctx, svRespondent("s1", "nope", svTime(1))); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("update of a missing respondent: %v", err)
	}

	// SetRespondentProfile leaves the password alone.
	bob.PasswordHash = "$argon2id$kept"
	if err := sv.UpdateRespondent(ctx, bob); err != nil {
		t.Fatal(err)
	}
	fields := []store.CustomField{{Name: "site", Value: "Leeds"}}
	if err := sv.SetRespondentProfile(ctx, bob.ID, "Robert", fields, svTime(30)); err != nil {
		t.Fatal(err)
	}
	got, _ = sv.Respondent(ctx, "s1", "bob")
	if got.Name != "Robert" || !reflect.DeepEqual(got.CustomFields, fields) || got.PasswordHash != "$argon2id$kept" || !got.UpdatedAt.Equal(svTime(30)) {
		t.Fatalf("profile set: %+v", got)
	}
	if err := sv.SetRespondentProfile(ctx, "res_nope", "x", nil, svTime(30)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("profile of a missing respondent: %v", err)
	}

	// DeleteRespondent returns the id of the row it deleted, in that survey only.
	if id, err := sv.DeleteRespondent(ctx, "s2", "alice"); err != nil || id != "res_s2_alice" {
		t.Fatalf("delete: %q %v", id, err)
	}
	if _, err := sv.DeleteRespondent(ctx, "s2", "alice"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if _, err := sv.Respondent(ctx, "s1", "alice"); err != nil {
		t.Fatalf("the other survey's alice: %v", err)
	}
}

func testRespondentPages(t *testing.T, db *store.DB) {
	ctx := t.Context()
	sv := db.Driver.Surveys()
	svCreateSurvey(t, db, svSurvey("p"))
	svCreateSurvey(t, db, svSurvey("other"))
	// Five rows share one microsecond: the id breaks the tie.
	for i := range 12 {
		at := svTime(i)
		if i >= 3 && i < 8 {
			at = svTime(3)
		}
		r := svRespondent("p", fmt.Sprintf("u%02d", i), at)
		r.ID = fmt.Sprintf("res_%02d", 20-i) // ids do not follow usernames
		if i >= 3 && i < 8 {
			r.ID = fmt.Sprintf("res_t%d", 8-i) // u03 has the largest id of the tied rows
		}
		svCreateRespondent(t, db, r)
	}
	svCreateRespondent(t, db, svRespondent("other", "x", svTime(0)))
	want := []string{"u00", "u01", "u02", "u07", "u06", "u05", "u04", "u03", "u08", "u09", "u10", "u11"}

	var got []string
	var after *store.RespondentCursor
	for pages := 0; ; pages++ {
		page, err := sv.Respondents(ctx, "p", after, 5)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) > 5 || pages > 3 {
			t.Fatalf("page of %d, page %d", len(page), pages)
		}
		for _, r := range page {
			got = append(got, r.Username)
		}
		if len(page) < 5 {
			break
		}
		last := page[len(page)-1]
		after = &store.RespondentCursor{CreatedAt: last.CreatedAt, ID: last.ID}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("pages %v, want %v", got, want)
	}
	if page, err := sv.Respondents(ctx, "nope", nil, 5); err != nil || len(page) != 0 {
		t.Fatalf("unknown survey: %v %v", page, err)
	}
}

func testRespondentImport(t *testing.T, db *store.DB) {
	ctx := t.Context()
	sv := db.Driver.Surveys()
	svCreateSurvey(t, db, svSurvey("imp"))
	old := svRespondent("imp", "u0003", svTime(1))
	old.PasswordHash = "$argon2id$old"
	old.CustomFields = []store.CustomField{{Name: "a", Value: "1"}}
	svCreateRespondent(t, db, old)
	keep := svRespondent("imp", "u0004", svTime(1))
	keep.PasswordHash = "$argon2id$keep"
	svCreateRespondent(t, db, keep)

	// More usernames than one read binds on SQLite (50×10), one of them repeated.
	const n = 620
	usernames := make([]string, 0, n+1)
	for i := range n {
		usernames = append(usernames, fmt.Sprintf("u%04d", i))
	}
	usernames = append(usernames, "u0004")
	existing, err := sv.ExistingRespondents(ctx, "imp", usernames)
	want := map[string]store.ExistingRespondent{
		"u0003": {ID: old.ID, Name: old.Name, CustomFields: old.CustomFields},
		"u0004": {ID: keep.ID, Name: keep.Name, CustomFields: []store.CustomField{}},
	}
	if err != nil || !reflect.DeepEqual(existing, want) {
		t.Fatalf("existing %+v %v", existing, err)
	}
	if existing, err := sv.ExistingRespondents(ctx, "nope", usernames[:3]); err != nil || len(existing) != 0 {
		t.Fatalf("unknown survey: %v %v", existing, err)
	}

	// More rows than one statement carries on SQLite (50): new ones are inserted as they are,
	// existing ones keep their id, auth token, CreatedAt, and password unless the row has one.
	rows := make([]store.Respondent, 0, 130)
	for i := range 130 {
		r := svRespondent("imp", fmt.Sprintf("u%04d", i), svTime(10))
		r.ID, r.AuthToken = fmt.Sprintf("res_new_%d", i), fmt.Sprintf("tok_new_%d", i)
		if i%2 == 0 {
			r.PasswordHash = fmt.Sprintf("$argon2id$new%d", i)
		}
		r.CustomFields = []store.CustomField{{Name: "n", Value: fmt.Sprint(i)}}
		rows = append(rows, r)
	}
	if err := db.Driver.InTx(ctx, func(tx store.Executor) error { return tx.Surveys().UpsertRespondents(ctx, rows) }); err != nil {
		t.Fatal(err)
	}
	all, err := sv.Respondents(ctx, "imp", nil, 1000)
	if err != nil || len(all) != 130 {
		t.Fatalf("%d respondents after the import: %v", len(all), err)
	}
	r3, _ := sv.Respondent(ctx, "imp", "u0003")
	if r3.ID != old.ID || r3.AuthToken != old.AuthToken || !r3.CreatedAt.Equal(old.CreatedAt) || r3.PasswordHash != "$argon2id$old" ||
		r3.Name != rows[3].Name || !reflect.DeepEqual(r3.CustomFields, rows[3].CustomFields) || !r3.UpdatedAt.Equal(svTime(10)) {
		t.Fatalf("existing without a password in the row: %+v", r3)
	}
	if r4, _ := sv.Respondent(ctx, "imp", "u0004"); r4.ID != keep.ID || r4.AuthToken != keep.AuthToken || r4.PasswordHash != "$argon2id$new4" {
		t.Fatalf("existing with a password in the row: %+v", r4)
	}
	if r129, _ := sv.Respondent(ctx, "imp", "u0129"); !reflect.DeepEqual(r129, rows[129]) {
		t.Fatalf("new: %+v, want %+v", r129, rows[129])
	}
	if err := sv.UpsertRespondents(ctx, nil); err != nil {
		t.Fatalf("nothing to write: %v", err)
	}
}

func testRespondentHashes(t *testing.T, db *store.DB) {
	ctx := t.Context()
	sv := db.Driver.Surveys()
	svCreateSurvey(t, db, svSurvey("h"))
	const full = "$argon2id$v=19$m=19456,t=2,p=1$"
	for i, hash := range []string{
		"$argon2id$v=19$m=512,t=1,p=1$s$h",   // weaker: a candidate
		full + "s$h",                         // the full cost: skipped
		"",                                   // token sign-in only: skipped
		"$argon2id-onion$v=19$x",             // already wrapped: skipped
		"$argon2id$v=19$m=512,t=1,p=1$t$h",   // a candidate
		"$argon2id$v=19$m=65536,t=3,p=4$u$h", // other costs: a candidate, judged by the caller
	} {
		r := svRespondent("h", fmt.Sprintf("u%d", i), svTime(i))
		r.ID, r.PasswordHash = fmt.Sprintf("res_%d", i), hash
		svCreateRespondent(t, db, r)
	}
	page, err := sv.WeakerHashCandidates(ctx, "", full, 2)
	if err != nil || len(page) != 2 || page[0].ID != "res_0" || page[1].ID != "res_4" || page[0].PasswordHash != "$argon2id$v=19$m=512,t=1,p=1$s$h" {
		t.Fatalf("first page %+v %v", page, err)
	}
	page, err = sv.WeakerHashCandidates(ctx, page[1].ID, full, 2)
	if err != nil || len(page) != 1 || page[0].ID != "res_5" {
		t.Fatalf("second page %+v %v", page, err)
	}
	if page, err := sv.WeakerHashCandidates(ctx, "res_5", full, 2); err != nil || len(page) != 0 {
		t.Fatalf("past the end %+v %v", page, err)
	}

	if ok, err := sv.SwapPasswordHash(ctx, "res_0", "$argon2id$v=19$m=512,t=1,p=1$s$h", "$argon2id-onion$up"); err != nil || !ok {
		t.Fatalf("swap: %v %v", ok, err)
	}
	if ok, err := sv.SwapPasswordHash(ctx, "res_4", "$argon2id$changed-meanwhile", "$argon2id-onion$up"); err != nil || ok {
		t.Fatalf("stale swap: %v %v", ok, err)
	}
	if r, _ := sv.Respondent(ctx, "h", "u4"); r.PasswordHash != "$argon2id$v=19$m=512,t=1,p=1$t$h" {
		t.Fatalf("a stale swap wrote %q", r.PasswordHash)
	}
	if page, err := sv.WeakerHashCandidates(ctx, "", full, 10); err != nil || len(page) != 2 || page[0].ID != "res_4" {
		t.Fatalf("after the swap %+v %v", page, err)
	}

	// No password (token sign-in only) is stored as NULL and read as ""; a swap from "" (what
	// sign-in would pass for it) never matches it.
	if r, err := sv.RespondentByAuthToken(ctx, "tok_h_u2"); err != nil || r.ID != "res_2" || r.PasswordHash != "" {
		t.Fatalf("respondent without a password: %+v %v", r, err)
	}
	if ok, err := sv.SwapPasswordHash(ctx, "res_2", "", "$argon2id-onion$up"); err != nil || ok {
		t.Fatalf("swap of a respondent without a password: %v %v", ok, err)
	}
	var isNull bool
	if err := db.QueryRow(ctx, `SELECT password_hash IS NULL FROM respondents WHERE id = $1`, "res_2").Scan(&isNull); err != nil || !isNull {
		t.Fatalf("no password stored as NULL: %v %v", isNull, err)
	}
}

// testRespondentRevocation checks the Accounts family's revocations that internal/survey runs
// in its transactions, against real respondents.
func testRespondentRevocation(t *testing.T, db *store.DB) {
	ctx := t.Context()
	acc := db.Driver.Accounts()
	svCreateSurvey(t, db, svSurvey("r1"))
	svCreateSurvey(t, db, svSurvey("r2"))
	var ids []string
	for i := range 3 {
		r := svRespondent("r1", fmt.Sprintf("u%d", i), svTime(i))
		svCreateRespondent(t, db, r)
		ids = append(ids, r.ID)
	}
	other := svRespondent("r2", "u0", svTime(0))
	svCreateRespondent(t, db, other)
	insert := func(jti, userID string, revokedAt *int64) {
		t.Helper()
		if _, err := db.Exec(ctx, `INSERT INTO refresh_tokens (jti, user_id, user_kind, created_at, expires_at, revoked_at)
			VALUES ($1, $2, 'respondent', $3, $4, $5)`, jti, userID, store.Micros(svTime(0)), store.Micros(svTime(0).Add(time.Hour)), revokedAt); err != nil {
			t.Fatal(err)
		}
	}
	earlier := store.Micros(svTime(5))
	insert("t0", ids[0], nil)
	insert("t0b", ids[0], &earlier) // revoked before: keeps its time
	insert("t1", ids[1], nil)
	insert("t2", ids[2], nil)
	insert("o", other.ID, nil)
	revokedAt := func(jti string) int64 {
		t.Helper()
		var at *int64
		if err := db.QueryRow(ctx, `SELECT revoked_at FROM refresh_tokens WHERE jti = $1`, jti).Scan(&at); err != nil {
			t.Fatal(err)
		}
		if at == nil {
			return 0
		}
		return *at
	}
	check := func(step string, want map[string]int64) {
		t.Helper()
		for jti, at := range want {
			if got := revokedAt(jti); got != at {
				t.Fatalf("%s: %s revoked at %d, want %d", step, jti, got, at)
			}
		}
	}

	now := svTime(10)
	if err := acc.RevokeRefreshTokensOf(ctx, nil, now); err != nil {
		t.Fatal(err)
	}
	if err := acc.RevokeRefreshTokensOf(ctx, []string{ids[0]}, now); err != nil {
		t.Fatal(err)
	}
	check("one respondent", map[string]int64{"t0": store.Micros(now), "t0b": earlier, "t1": 0, "t2": 0, "o": 0})

	// More users than one statement binds on SQLite (500).
	many := []string{ids[1]}
	for i := range 700 {
		many = append(many, fmt.Sprintf("res_absent_%d", i))
	}
	later := svTime(20)
	if err := acc.RevokeRefreshTokensOf(ctx, many, later); err != nil {
		t.Fatal(err)
	}
	check("many", map[string]int64{"t0": store.Micros(now), "t1": store.Micros(later), "t2": 0, "o": 0})

	last := svTime(30)
	err := db.Driver.InTx(ctx, func(tx store.Executor) error { return tx.Accounts().RevokeSurveyRefreshTokens(ctx, "r1", last) })
	if err != nil {
		t.Fatal(err)
	}
	check("survey", map[string]int64{"t0": store.Micros(now), "t0b": earlier, "t1": store.Micros(later), "t2": store.Micros(last), "o": 0})
	if err := acc.RevokeSurveyRefreshTokens(ctx, "nope", last); err != nil {
		t.Fatalf("unknown survey: %v", err)
	}
}
