package drivertest

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/internal/store"
)

func testWebhooks(t *testing.T, open Opener) {
	t.Helper()
	ctx := context.Background()
	// Stored times have microseconds; the test's times are whole ones so that they compare.
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

	// setup returns a fresh database with the surveys s1 (jwtSecret "jwt-1") and s2 (none).
	setup := func(t *testing.T) *store.DB {
		t.Helper()
		db := open(t)
		for _, s := range []struct {
			id  string
			jwt any
		}{{"s1", "jwt-1"}, {"s2", nil}} {
			if _, err := db.Exec(ctx, "INSERT INTO surveys (id, name, jwt_secret, created_at, updated_at) VALUES ($1, $1, $2, $3, $3)",
				s.id, s.jwt, store.Micros(t0)); err != nil {
				t.Fatal(err)
			}
		}
		return db
	}
	newWebhook := func(id, surveyID string, created time.Time) *store.Webhook {
		return &store.Webhook{
			ID: id, SurveyID: surveyID, URL: "https://example.org/" + id, Description: "hook " + id,
			Events:          []string{"survey.session.submitted", "survey.session.started"},
			SignatureScheme: store.SignatureSchemeV1,
			Secret:          "whsec_" + id,
			Ordering:        store.OrderingNone,
			CreatedAt:       created, UpdatedAt: created,
		}
	}
	create := func(t *testing.T, db *store.DB, ws ...*store.Webhook) {
		t.Helper()
		for _, w := range ws {
			if err := db.Driver.Webhooks().Create(ctx, w); err != nil {
				t.Fatalf("creating %s: %v", w.ID, err)
			}
		}
	}
	version := func(t *testing.T, db *store.DB) int64 {
		t.Helper()
		v, err := db.Driver.Webhooks().Version(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	// moves runs fn and checks whether it moved the webhooks version.
	moves := func(t *testing.T, db *store.DB, what string, want bool, fn func() error) {
		t.Helper()
		before := version(t, db)
		if err := fn(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if moved := version(t, db) != before; moved != want {
			t.Errorf("%s: version moved %v, want %v", what, moved, want)
		}
	}

	t.Run("create and get", func(t *testing.T) {
		db := setup(t)
		q := db.Driver.Webhooks()
		w := newWebhook("w1", "s1", t0)
		moves(t, db, "create", true, func() error { return q.Create(ctx, w) })
		got, err := q.Get(ctx, "s1", "w1")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, w) {
			t.Errorf("got %+v, want %+v", got, w)
		}
		if _, err := q.Get(ctx, "s2", "w1"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("another survey's webhook: %v, want ErrNotFound", err)
		}
		if _, err := q.Get(ctx, "s1", "none"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("missing webhook: %v, want ErrNotFound", err)
		}
		if err := q.Create(ctx, newWebhook("w1", "s1", t0)); !errors.Is(err, store.ErrConflict) {
			t.Errorf("same id again: %v, want ErrConflict", err)
		}
		// The caller checks the survey (Surveys.SurveyExists); the foreign key still refuses
		// a webhook of an unknown survey, as an error that is neither of the store's kinds.
		if err := q.Create(ctx, newWebhook("w2", "nosuch", t0)); err == nil || errors.Is(err, store.ErrConflict) {
			t.Errorf("unknown survey: %v, want a foreign key error", err)
		}
	})

	t.Run("list", func(t *testing.T) {
		db := setup(t)
		q := db.Driver.Webhooks()
		if ws, err := q.List(ctx, "s1"); err != nil || ws == nil || len(ws) != 0 {
			t.Fatalf("no webhooks: %v, %v; want an empty list", ws, err)
		}
		// Oldest first, the id breaking ties.
		create(t, db, newWebhook("wc", "s1", t0.Add(time.Second)), newWebhook("wb", "s1", t0),
			newWebhook("wa", "s1", t0.Add(time.Second)), newWebhook("wx", "s2", t0))
		ws, err := q.List(ctx, "s1")
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, w := range ws {
			ids = append(ids, w.ID)
		}
		if want := []string{"wb", "wa", "wc"}; !slices.Equal(ids, want) {
			t.Errorf("listed %v, want %v", ids, want)
		}
	})

	t.Run("update", func(t *testing.T) {
		db := setup(t)
		q := db.Driver.Webhooks()
		create(t, db, newWebhook("w1", "s1", t0))
		w, err := q.Get(ctx, "s1", "w1")
		if err != nil {
			t.Fatal(err)
		}
		w.Description, w.UpdatedAt = "renamed", t0.Add(time.Minute)
		// Update writes every column the triggers watch, so it moves the version whatever changed.
		moves(t, db, "change the description", true, func() error { return q.Update(ctx, w) })
		w.URL = "https://example.org/moved"
		moves(t, db, "change the URL", true, func() error { return q.Update(ctx, w) })
		w.Events = []string{"survey.session.cancelled"}
		moves(t, db, "change the events", true, func() error { return q.Update(ctx, w) })
		w.Disabled, w.DisabledReason, w.DisabledAt = true, "manual", t0.Add(2*time.Minute)
		w.ConsecutiveFailures, w.FirstFailureAt = 4, t0.Add(30*time.Second)
		moves(t, db, "disable", true, func() error { return q.Update(ctx, w) })
		got, err := q.Get(ctx, "s1", "w1")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, w) {
			t.Errorf("after updates got %+v, want %+v", got, w)
		}
		w.Disabled, w.DisabledReason, w.DisabledAt = false, "", time.Time{}
		w.ConsecutiveFailures, w.FirstFailureAt = 0, time.Time{}
		moves(t, db, "re-enable", true, func() error { return q.Update(ctx, w) })
		if got, err = q.Get(ctx, "s1", "w1"); err != nil || !reflect.DeepEqual(got, w) {
			t.Errorf("after re-enabling got %+v, %v, want %+v", got, err, w)
		}

		other := *w
		other.SurveyID = "s2"
		if err := q.Update(ctx, &other); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("update through another survey: %v, want ErrNotFound", err)
		}
	})

	t.Run("update in a transaction", func(t *testing.T) {
		db := setup(t)
		create(t, db, newWebhook("w1", "s1", t0))
		errRollback := errors.New("roll back")
		err := db.Driver.InTx(ctx, func(tx store.Executor) error {
			w, err := tx.Webhooks().GetForUpdate(ctx, "s1", "w1")
			if err != nil {
				return err
			}
			w.URL = "https://example.org/rolled-back"
			if err := tx.Webhooks().Update(ctx, w); err != nil {
				return err
			}
			if got, err := tx.Webhooks().Get(ctx, "s1", "w1"); err != nil || got.URL != w.URL {
				t.Errorf("inside the transaction: %+v, %v; want its own write", got, err)
			}
			return errRollback
		})
		if !errors.Is(err, errRollback) {
			t.Fatalf("InTx: %v", err)
		}
		if got, err := db.Driver.Webhooks().Get(ctx, "s1", "w1"); err != nil || got.URL != "https://example.org/w1" {
			t.Errorf("after the rollback: %+v, %v", got, err)
		}
		err = db.Driver.InTx(ctx, func(tx store.Executor) error {
			_, err := tx.Webhooks().GetForUpdate(ctx, "s2", "w1")
			return err
		})
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("locking another survey's webhook: %v, want ErrNotFound", err)
		}
	})

	t.Run("delete", func(t *testing.T) {
		db := setup(t)
		q := db.Driver.Webhooks()
		create(t, db, newWebhook("w1", "s1", t0))
		if err := q.Delete(ctx, "s2", "w1"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("delete through another survey: %v, want ErrNotFound", err)
		}
		moves(t, db, "delete", true, func() error { return q.Delete(ctx, "s1", "w1") })
		if err := q.Delete(ctx, "s1", "w1"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("delete again: %v, want ErrNotFound", err)
		}
		if _, err := q.Get(ctx, "s1", "w1"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("get after delete: %v, want ErrNotFound", err)
		}
	})

	t.Run("rotate secret", func(t *testing.T) {
		db := setup(t)
		q := db.Driver.Webhooks()
		create(t, db, newWebhook("w1", "s1", t0))
		until, now := t0.Add(24*time.Hour), t0.Add(time.Hour)
		var got *store.Webhook
		moves(t, db, "rotate", true, func() (err error) {
			got, err = q.RotateSecret(ctx, "s1", "w1", store.SignatureSchemeV1, "whsec_new", until, now)
			return err
		})
		if got.Secret != "whsec_new" || got.PreviousSecret != "whsec_w1" || !got.PreviousSecretUntil.Equal(until) ||
			!got.UpdatedAt.Equal(now) || got.URL != "https://example.org/w1" {
			t.Errorf("after rotation: %+v", got)
		}
		if stored, err := q.Get(ctx, "s1", "w1"); err != nil || !reflect.DeepEqual(stored, got) {
			t.Errorf("stored %+v, %v; returned %+v", stored, err, got)
		}
		// A second rotation drops the oldest secret.
		got, err := q.RotateSecret(ctx, "s1", "w1", store.SignatureSchemeV1, "whsec_newer", until.Add(time.Hour), now)
		if err != nil || got.Secret != "whsec_newer" || got.PreviousSecret != "whsec_new" {
			t.Errorf("second rotation: %+v, %v", got, err)
		}
		if _, err := q.RotateSecret(ctx, "s2", "w1", store.SignatureSchemeV1, "whsec_x", until, now); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("rotation through another survey: %v, want ErrNotFound", err)
		}
	})

	t.Run("signature scheme", func(t *testing.T) {
		db := setup(t)
		q := db.Driver.Webhooks()
		w := newWebhook("w1", "s1", t0)
		w.SignatureScheme, w.Secret = store.SignatureSchemeV1a, "whsk_first"
		create(t, db, w, newWebhook("w2", "s1", t0.Add(time.Second)))
		if got, err := q.Get(ctx, "s1", "w1"); err != nil || !reflect.DeepEqual(got, w) {
			t.Errorf("created v1a: %+v, %v; want %+v", got, err, w)
		}
		// A rotation that keeps the scheme, then one that switches it: the previous secret
		// is the old scheme's, and signs until until.
		until, now := t0.Add(24*time.Hour), t0.Add(time.Hour)
		got, err := q.RotateSecret(ctx, "s1", "w1", store.SignatureSchemeV1a, "whsk_second", until, now)
		if err != nil || got.SignatureScheme != store.SignatureSchemeV1a || got.Secret != "whsk_second" || got.PreviousSecret != "whsk_first" {
			t.Errorf("v1a rotation: %+v, %v", got, err)
		}
		moves(t, db, "switch w2 from v1 to v1a", true, func() (err error) {
			got, err = q.RotateSecret(ctx, "s1", "w2", store.SignatureSchemeV1a, "whsk_w2", until, now)
			return err
		})
		if got.SignatureScheme != store.SignatureSchemeV1a || got.Secret != "whsk_w2" || got.PreviousSecret != "whsec_w2" ||
			!got.PreviousSecretUntil.Equal(until) {
			t.Errorf("after the switch: %+v", got)
		}
		// Update leaves the scheme alone, whatever w says.
		got.SignatureScheme, got.Description = store.SignatureSchemeV1, "renamed"
		if err := q.Update(ctx, got); err != nil {
			t.Fatal(err)
		}
		if got, err := q.Get(ctx, "s1", "w2"); err != nil || got.SignatureScheme != store.SignatureSchemeV1a || got.Description != "renamed" {
			t.Errorf("after an update: %+v, %v", got, err)
		}
		sw, err := q.LoadSurvey(ctx, "s1")
		if err != nil || len(sw.Webhooks) != 2 {
			t.Fatalf("load: %+v, %v", sw, err)
		}
		for _, w := range sw.Webhooks {
			if w.SignatureScheme != store.SignatureSchemeV1a || !strings.HasPrefix(w.Secret, "whsk_") {
				t.Errorf("loaded %s: scheme %q, secret %q", w.ID, w.SignatureScheme, w.Secret)
			}
		}
		// Only the two schemes are stored.
		if _, err := q.RotateSecret(ctx, "s1", "w1", "v2", "whsk_x", until, now); err == nil {
			t.Error("rotating to the scheme v2 succeeded")
		}
		bad := newWebhook("w3", "s1", t0)
		bad.SignatureScheme = "hmac"
		if err := q.Create(ctx, bad); err == nil {
			t.Error("creating a webhook of the scheme hmac succeeded")
		}
		// The database moves the version on a change of the scheme alone, as an operator's
		// SQL might make it.
		moves(t, db, "change only the scheme", true, func() error {
			_, err := db.Exec(ctx, "UPDATE webhooks SET signature_scheme = 'v1' WHERE id = 'w1'")
			return err
		})
	})

	t.Run("survey jwt secret moves the version", func(t *testing.T) {
		db := setup(t)
		if s, err := db.Driver.Surveys().SealedJWTSecret(ctx, "s1"); err != nil || s != "jwt-1" {
			t.Errorf("s1: %q, %v", s, err)
		}
		if s, err := db.Driver.Surveys().SealedJWTSecret(ctx, "s2"); err != nil || s != "" {
			t.Errorf("s2 (none): %q, %v", s, err)
		}
		if _, err := db.Driver.Surveys().SealedJWTSecret(ctx, "nosuch"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("unknown survey: %v, want ErrNotFound", err)
		}
		// The jwtSecret signs deliveries: changing it moves the webhooks version.
		moves(t, db, "change the survey's jwtSecret", true, func() error {
			_, err := db.Exec(ctx, "UPDATE surveys SET jwt_secret = 'jwt-2' WHERE id = 's2'")
			return err
		})
		moves(t, db, "change the survey's name", false, func() error {
			_, err := db.Exec(ctx, "UPDATE surveys SET name = 'other' WHERE id = 's2'")
			return err
		})
		if s, err := db.Driver.Surveys().SealedJWTSecret(ctx, "s2"); err != nil || s != "jwt-2" {
			t.Errorf("s2 after the change: %q, %v", s, err)
		}
	})

	t.Run("load survey", func(t *testing.T) {
		db := setup(t)
		q := db.Driver.Webhooks()
		sw, err := q.LoadSurvey(ctx, "nosuch")
		if err != nil || sw.Found || len(sw.Webhooks) != 0 || sw.Version != version(t, db) {
			t.Errorf("unknown survey: %+v, %v", sw, err)
		}
		sw, err = q.LoadSurvey(ctx, "s2")
		if err != nil || !sw.Found || sw.JWTSecret != "" || len(sw.Webhooks) != 0 {
			t.Errorf("survey without webhooks: %+v, %v", sw, err)
		}
		w2, w1 := newWebhook("w2", "s1", t0.Add(time.Second)), newWebhook("w1", "s1", t0)
		w2.RateLimit = 20
		create(t, db, w2, w1, newWebhook("wx", "s2", t0))
		if _, err := q.RotateSecret(ctx, "s1", "w2", store.SignatureSchemeV1, "whsec_rotated", t0.Add(time.Hour), t0.Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		if _, err := q.Disable(ctx, "w1", "gone", t0.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		sw, err = q.LoadSurvey(ctx, "s1")
		if err != nil {
			t.Fatal(err)
		}
		if !sw.Found || sw.JWTSecret != "jwt-1" || sw.Version != version(t, db) || len(sw.Webhooks) != 2 {
			t.Fatalf("s1: %+v", sw)
		}
		for i, id := range []string{"w1", "w2"} {
			want, err := q.Get(ctx, "s1", id)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(sw.Webhooks[i], want) {
				t.Errorf("webhook %d: loaded %+v, want %+v", i, sw.Webhooks[i], want)
			}
		}
	})

	t.Run("disable", func(t *testing.T) {
		db := setup(t)
		q := db.Driver.Webhooks()
		create(t, db, newWebhook("w1", "s1", t0))
		now := t0.Add(time.Hour)
		var d *store.DisabledWebhook
		moves(t, db, "disable", true, func() (err error) {
			d, err = q.Disable(ctx, "w1", "the receiver answered 410 Gone", now)
			return err
		})
		if want := (store.DisabledWebhook{ID: "w1", SurveyID: "s1", Reason: "the receiver answered 410 Gone"}); d == nil || *d != want {
			t.Errorf("disabled %+v, want %+v", d, want)
		}
		w, err := q.Get(ctx, "s1", "w1")
		if err != nil || !w.Disabled || w.DisabledReason != "the receiver answered 410 Gone" || !w.DisabledAt.Equal(now) ||
			!w.UpdatedAt.Equal(now) {
			t.Errorf("stored %+v, %v", w, err)
		}
		moves(t, db, "disable again", false, func() (err error) {
			d, err = q.Disable(ctx, "w1", "again", now.Add(time.Hour))
			return err
		})
		if d != nil {
			t.Errorf("disabling a disabled webhook returned %+v", d)
		}
		if w, _ := q.Get(ctx, "s1", "w1"); w.DisabledReason != "the receiver answered 410 Gone" {
			t.Errorf("a second disable changed the reason to %q", w.DisabledReason)
		}
		if d, err := q.Disable(ctx, "nosuch", "x", now); d != nil || err != nil {
			t.Errorf("disabling a missing webhook: %+v, %v", d, err)
		}
	})

	t.Run("failure counts", func(t *testing.T) {
		db := setup(t)
		q := db.Driver.Webhooks()
		create(t, db, newWebhook("w1", "s1", t0), newWebhook("w2", "s1", t0), newWebhook("w3", "s2", t0))
		counters := func(id string) (int, time.Time) {
			t.Helper()
			w, err := q.Get(ctx, map[string]string{"w1": "s1", "w2": "s1", "w3": "s2"}[id], id)
			if err != nil {
				t.Fatal(err)
			}
			return w.ConsecutiveFailures, w.FirstFailureAt
		}
		t1, t2 := t0.Add(time.Minute), t0.Add(2*time.Minute)
		moves(t, db, "count failures", false, func() error {
			return q.CountFailures(ctx, []store.FailureCount{
				{WebhookID: "w1", Failures: 2, FirstFailureAt: t1},
				{WebhookID: "w2", Failures: 1, FirstFailureAt: t1},
				{WebhookID: "nosuch", Failures: 1, FirstFailureAt: t1},
			})
		})
		if n, at := counters("w1"); n != 2 || !at.Equal(t1) {
			t.Errorf("w1 after 2 failures: %d since %v", n, at)
		}
		// Failures add up and keep the first failure's time; a reset starts afresh.
		if err := q.CountFailures(ctx, []store.FailureCount{
			{WebhookID: "w1", Failures: 3, FirstFailureAt: t2},
			{WebhookID: "w2", Reset: true, Failures: 1, FirstFailureAt: t2},
			{WebhookID: "w3", Reset: true},
		}); err != nil {
			t.Fatal(err)
		}
		if n, at := counters("w1"); n != 5 || !at.Equal(t1) {
			t.Errorf("w1 after 5 failures: %d since %v, want 5 since %v", n, at, t1)
		}
		if n, at := counters("w2"); n != 1 || !at.Equal(t2) {
			t.Errorf("w2 after a success and a failure: %d since %v, want 1 since %v", n, at, t2)
		}
		if err := q.CountFailures(ctx, []store.FailureCount{{WebhookID: "w1", Reset: true}}); err != nil {
			t.Fatal(err)
		}
		if n, at := counters("w1"); n != 0 || !at.IsZero() {
			t.Errorf("w1 after a success: %d since %v", n, at)
		}
		if n, at := counters("w3"); n != 0 || !at.IsZero() {
			t.Errorf("w3 (only successes): %d since %v", n, at)
		}
		if err := q.CountFailures(ctx, nil); err != nil {
			t.Errorf("no counts: %v", err)
		}
	})

	t.Run("disable failing", func(t *testing.T) {
		db := setup(t)
		q := db.Driver.Webhooks()
		create(t, db, newWebhook("few", "s1", t0), newWebhook("recent", "s1", t0), newWebhook("failing", "s1", t0),
			newWebhook("unlisted", "s2", t0))
		if err := q.CountFailures(ctx, []store.FailureCount{
			{WebhookID: "few", Failures: 2, FirstFailureAt: t0},
			{WebhookID: "recent", Failures: 9, FirstFailureAt: t0.Add(time.Hour)},
			{WebhookID: "failing", Failures: 5, FirstFailureAt: t0},
			{WebhookID: "unlisted", Failures: 9, FirstFailureAt: t0},
		}); err != nil {
			t.Fatal(err)
		}
		now := t0.Add(2 * time.Hour)
		var got []store.DisabledWebhook
		moves(t, db, "disable failing", true, func() (err error) {
			got, err = q.DisableFailing(ctx, []string{"few", "recent", "failing", "nosuch"}, 3, t0.Add(time.Minute), now)
			return err
		})
		want := []store.DisabledWebhook{{ID: "failing", SurveyID: "s1", Reason: "disabled after 5 consecutive failed attempts"}}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("disabled %+v, want %+v", got, want)
		}
		if w, err := q.Get(ctx, "s1", "failing"); err != nil || !w.Disabled || !w.DisabledAt.Equal(now) {
			t.Errorf("failing: %+v, %v", w, err)
		}
		if got, err := q.DisableFailing(ctx, []string{"failing"}, 3, now, now); err != nil || len(got) != 0 {
			t.Errorf("disabling a disabled webhook again: %+v, %v", got, err)
		}
		if got, err := q.DisableFailing(ctx, nil, 3, now, now); err != nil || len(got) != 0 {
			t.Errorf("no ids: %+v, %v", got, err)
		}
		if w, err := q.Get(ctx, "s2", "unlisted"); err != nil || w.Disabled {
			t.Errorf("an unlisted webhook was disabled: %+v, %v", w, err)
		}
	})

	t.Run("stale secrets", func(t *testing.T) {
		db := setup(t)
		q := db.Driver.Webhooks()
		sealed := func(s string) string { return "sealed:" + s }
		w1, w2, w3 := newWebhook("w1", "s1", t0), newWebhook("w2", "s1", t0), newWebhook("w3", "s1", t0)
		w1.Secret, w2.Secret, w3.Secret = sealed("a"), "plain", sealed("c")
		create(t, db, w1, w2, w3)
		// w3 rotates: its previous secret is sealed, its new one plain.
		if _, err := q.RotateSecret(ctx, "s1", "w3", store.SignatureSchemeV1, "plain-new", t0.Add(time.Hour), t0); err != nil {
			t.Fatal(err)
		}
		// w1 rotates to a sealed secret: nothing stale.
		if _, err := q.RotateSecret(ctx, "s1", "w1", store.SignatureSchemeV1, sealed("b"), t0.Add(time.Hour), t0); err != nil {
			t.Fatal(err)
		}
		stale, err := q.StaleSecrets(ctx, "sealed:")
		if err != nil {
			t.Fatal(err)
		}
		slices.SortFunc(stale, func(a, b store.WebhookSecrets) int { return strings.Compare(a.ID, b.ID) })
		if len(stale) != 2 || stale[0].ID != "w2" || stale[0].Secret != "plain" || stale[0].PreviousSecret != nil ||
			stale[1].ID != "w3" || stale[1].Secret != "plain-new" || stale[1].PreviousSecret == nil ||
			*stale[1].PreviousSecret != sealed("c") {
			t.Fatalf("stale %+v", stale)
		}
		if ok, err := q.ReplaceSecret(ctx, "w2", false, "not the stored value", sealed("x")); ok || err != nil {
			t.Errorf("replacing a value that changed meanwhile: %v, %v", ok, err)
		}
		moves(t, db, "replace a secret", true, func() error {
			ok, err := q.ReplaceSecret(ctx, "w2", false, "plain", sealed("plain"))
			if !ok && err == nil {
				t.Error("the secret was not replaced")
			}
			return err
		})
		if ok, err := q.ReplaceSecret(ctx, "w3", true, sealed("c"), sealed("c2")); !ok || err != nil {
			t.Errorf("replacing a previous secret: %v, %v", ok, err)
		}
		if ok, err := q.ReplaceSecret(ctx, "w3", false, "plain-new", sealed("new")); !ok || err != nil {
			t.Errorf("replacing w3's secret: %v, %v", ok, err)
		}
		w, err := q.Get(ctx, "s1", "w3")
		if err != nil || w.Secret != sealed("new") || w.PreviousSecret != sealed("c2") {
			t.Errorf("w3 %+v, %v", w, err)
		}
		if stale, err := q.StaleSecrets(ctx, "sealed:"); err != nil || len(stale) != 0 {
			t.Errorf("still stale: %+v, %v", stale, err)
		}
	})

	t.Run("survey deletion", func(t *testing.T) {
		db := setup(t)
		create(t, db, newWebhook("w1", "s1", t0), newWebhook("w2", "s1", t0))
		moves(t, db, "delete the survey", true, func() error {
			_, err := db.Exec(ctx, "DELETE FROM surveys WHERE id = 's1'")
			return err
		})
		if ws, err := db.Driver.Webhooks().List(ctx, "s1"); err != nil || len(ws) != 0 {
			t.Errorf("webhooks of a deleted survey: %v, %v", ws, err)
		}
	})

	t.Run("rate limit", func(t *testing.T) {
		db := setup(t)
		q := db.Driver.Webhooks()
		w := newWebhook("w1", "s1", t0)
		w.RateLimit = 50
		create(t, db, w)
		if got, err := q.Get(ctx, "s1", "w1"); err != nil || got.RateLimit != 50 {
			t.Fatalf("created with a limit: %+v, %v", got, err)
		}
		w.RateLimit = 7
		moves(t, db, "change the limit", true, func() error { return q.Update(ctx, w) })
		if ws, err := q.List(ctx, "s1"); err != nil || len(ws) != 1 || ws[0].RateLimit != 7 {
			t.Errorf("listed after the change: %+v, %v", ws, err)
		}
		w.RateLimit = 0
		moves(t, db, "clear the limit", true, func() error { return q.Update(ctx, w) })
		if got, err := q.Get(ctx, "s1", "w1"); err != nil || got.RateLimit != 0 {
			t.Errorf("cleared: %+v, %v", got, err)
		}
		// The column refuses what the API would: a limit below 1 is stored only as NULL.
		if _, err := db.Exec(ctx, "UPDATE webhooks SET rate_limit = 0 WHERE id = 'w1'"); err == nil {
			t.Error("a rate limit of 0 was stored")
		}
	})

	t.Run("take tokens", func(t *testing.T) {
		db := setup(t)
		q := db.Driver.Webhooks()
		create(t, db, newWebhook("w1", "s1", t0), newWebhook("w2", "s1", t0))
		const iv = 100 * time.Millisecond
		take := func(id string, at time.Duration, want int) store.TokenGrant {
			t.Helper()
			g, err := q.TakeTokens(ctx, store.TokenTake{WebhookID: id, Want: want, Interval: iv, Burst: 3, Now: t0.Add(at)})
			if err != nil {
				t.Fatalf("take %d at %s: %v", want, at, err)
			}
			return g
		}
		for _, c := range []struct {
			name   string
			at     time.Duration
			want   int
			got    int
			nextAt time.Duration
		}{
			{"a new bucket starts full", 0, 2, 2, 0},
			{"what is left of the burst", 0, 2, 1, 100 * time.Millisecond},
			{"empty until a token is back", 50 * time.Millisecond, 1, 0, 100 * time.Millisecond},
			{"one token a interval, want capped by the burst", 100 * time.Millisecond, 5, 1, 200 * time.Millisecond},
			{"whole tokens only", 250 * time.Millisecond, 3, 1, 300 * time.Millisecond},
			{"a taker whose clock is behind gets none", -time.Second, 1, 0, 300 * time.Millisecond},
			{"refilled to the burst, never beyond", 10 * time.Second, 3, 3, 10*time.Second + 100*time.Millisecond},
		} {
			g := take("w1", c.at, c.want)
			if g.Granted != c.got || !g.NextAt.Equal(t0.Add(c.nextAt)) {
				t.Errorf("%s: granted %d, next at %s; want %d, next at %s", c.name, g.Granted, g.NextAt.Sub(t0), c.got, c.nextAt)
			}
		}
		// Each endpoint has a bucket of its own.
		if g := take("w2", 10*time.Second, 3); g.Granted != 3 {
			t.Errorf("another endpoint's bucket: granted %d, want 3", g.Granted)
		}
		if _, err := q.TakeTokens(ctx, store.TokenTake{WebhookID: "none", Want: 1, Interval: iv, Burst: 1, Now: t0}); err == nil {
			t.Error("tokens of a webhook that does not exist were granted")
		}
		if _, err := q.TakeTokens(ctx, store.TokenTake{WebhookID: "w1", Want: 0, Interval: iv, Burst: 1, Now: t0}); err == nil {
			t.Error("a take of 0 tokens was accepted")
		}
		// Deleting the webhook deletes its bucket with it.
		if err := q.Delete(ctx, "s1", "w1"); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := db.QueryRow(ctx, "SELECT COUNT(*) FROM webhook_rate_tokens WHERE webhook_id = 'w1'").Scan(&n); err != nil || n != 0 {
			t.Errorf("buckets of a deleted webhook: %d, %v", n, err)
		}
	})

	t.Run("take tokens concurrently", func(t *testing.T) {
		db := setup(t)
		q := db.Driver.Webhooks()
		create(t, db, newWebhook("w1", "s1", t0))
		// Many takers at the same instant share one burst: the take is atomic.
		const takers, burst = 8, 20
		var wg sync.WaitGroup
		var granted atomic.Int64
		for range takers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 5 {
					g, err := q.TakeTokens(ctx, store.TokenTake{WebhookID: "w1", Want: 2, Interval: time.Second, Burst: burst, Now: t0})
					if err != nil {
						t.Error(err)
						return
					}
					granted.Add(int64(g.Granted))
				}
			}()
		}
		wg.Wait()
		if got := granted.Load(); got != burst {
			t.Errorf("%d takers granted %d tokens in all, want the burst, %d", takers, got, burst)
		}
	})
}
