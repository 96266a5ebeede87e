package client_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/pkg/client"
)

// TestErrorCarriesTheProblem: a refusal comes back as *client.Error with the problem+json
// fields, naming the bad field, and nothing is created.
func TestErrorCarriesTheProblem(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := newClient(t)
	_, err := c.CreateWebhook(ctx, "demo", client.NewWebhook{URL: "ftp://example.org/hook"})
	var apiErr *client.Error
	if !errors.As(err, &apiErr) {
		t.Fatalf("CreateWebhook with an ftp URL: %v, want *client.Error", err)
	}
	msg, ok := apiErr.Field("url")
	if apiErr.StatusCode != 400 || apiErr.Code != "validation_failed" || !ok || msg == "" || apiErr.Title == "" {
		t.Fatalf("error %+v: want 400 validation_failed naming url", apiErr)
	}
	if !strings.Contains(err.Error(), "POST /api/admin/surveys/demo/webhooks: the API answered 400 validation_failed") ||
		!strings.Contains(err.Error(), "url: ") {
		t.Errorf("message %q", err)
	}
	// Other tests create webhooks in "demo" in parallel, so look for this one by its URL.
	after, err := c.ListWebhooks(ctx, "demo")
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range after {
		if w.URL == "ftp://example.org/hook" {
			t.Fatalf("the refused webhook was created: %+v", w)
		}
	}

	_, err = c.GetDelivery(ctx, "dlv_nope")
	if !client.IsNotFound(err) || !errors.As(err, &apiErr) || apiErr.Code != "delivery_not_found" {
		t.Fatalf("GetDelivery of a missing delivery: %v", err)
	}
	// A wrong token.
	_, err = c.WithToken("d24pat_wrong").ListDeliveries(ctx, client.DeliveryFilter{})
	if !client.HasStatus(err, http.StatusUnauthorized) || strings.Contains(err.Error(), "d24pat_wrong") {
		t.Fatalf("wrong token: %v", err)
	}
}

// TestWebhookCRUD registers, reads, changes, lists, rotates and deletes a webhook.
func TestWebhookCRUD(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := newClient(t)
	created, err := c.CreateWebhook(ctx, "demo", client.NewWebhook{URL: receiverURL + "/crud"})
	if err != nil {
		t.Fatal(err)
	}
	if created.ID == "" || created.SurveyID != "demo" || len(created.Events) != 1 || created.CreatedAt.IsZero() {
		t.Fatalf("created %+v", created)
	}
	got, err := c.GetWebhook(ctx, "demo", created.ID)
	if err != nil || got.URL != receiverURL+"/crud" {
		t.Fatalf("get: %+v %v", got, err)
	}
	desc, off := "paused", true
	upd, err := c.UpdateWebhook(ctx, "demo", created.ID, client.WebhookPatch{Description: &desc, Disabled: &off})
	if err != nil || upd.Description != desc || !upd.Disabled || upd.DisabledAt == nil {
		t.Fatalf("update: %+v %v", upd, err)
	}
	list, err := c.ListWebhooks(ctx, "demo")
	found := false
	for _, w := range list {
		found = found || w.ID == created.ID
	}
	if err != nil || !found {
		t.Fatalf("list: %v %v", list, err)
	}
	rot, err := c.RotateSecret(ctx, "demo", created.ID)
	if err != nil || !strings.HasPrefix(rot.Secret, "whsec_") || rot.Secret == created.Secret || !rot.PreviousSecretExpiresAt.After(time.Now()) {
		t.Fatalf("rotate: %+v %v", rot, err)
	}
	if err := c.DeleteWebhook(ctx, "demo", created.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetWebhook(ctx, "demo", created.ID); !client.IsNotFound(err) {
		t.Fatalf("after delete: %v", err)
	}
}

// TestWebhookV1a registers a v1a webhook and follows its public key through a rotation and a
// switch of the scheme: the client never sees a signing key.
func TestWebhookV1a(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := newClient(t)
	created, err := c.CreateWebhook(ctx, "demo", client.NewWebhook{URL: receiverURL + "/v1a", SignatureScheme: client.SchemeV1a})
	if err != nil || created.SignatureScheme != client.SchemeV1a || !strings.HasPrefix(created.PublicKey, "whpk_") || created.Secret != "" {
		t.Fatalf("created %+v, %v", created, err)
	}
	t.Cleanup(func() { _ = c.DeleteWebhook(context.Background(), "demo", created.ID) })
	got, err := c.GetWebhook(ctx, "demo", created.ID)
	if err != nil || got.PublicKey != created.PublicKey || got.SignatureScheme != client.SchemeV1a {
		t.Fatalf("get: %+v %v", got, err)
	}
	rot, err := c.RotateSecret(ctx, "demo", created.ID)
	if err != nil || rot.Secret != "" || !strings.HasPrefix(rot.PublicKey, "whpk_") || rot.PublicKey == created.PublicKey {
		t.Fatalf("rotate: %+v %v", rot, err)
	}
	v1 := client.SchemeV1
	upd, err := c.UpdateWebhook(ctx, "demo", created.ID, client.WebhookPatch{SignatureScheme: &v1})
	if err != nil || upd.SignatureScheme != client.SchemeV1 || !strings.HasPrefix(upd.Secret, "whsec_") || upd.PublicKey != "" ||
		upd.PreviousSecretExpiresAt == nil {
		t.Fatalf("switch to v1: %+v %v", upd, err)
	}
	bad := "v2"
	if _, err := c.UpdateWebhook(ctx, "demo", created.ID, client.WebhookPatch{SignatureScheme: &bad}); !client.HasStatus(err, http.StatusBadRequest) {
		t.Fatalf("scheme v2: %v", err)
	}
}

// TestWebhookRateLimit: a webhook is created with a rate limit, shows it, has it changed and
// removed (a patch of 0 is sent as null) and keeps it through a patch of another field.
func TestWebhookRateLimit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := newClient(t)
	twenty := 20
	created, err := c.CreateWebhook(ctx, "demo", client.NewWebhook{URL: receiverURL + "/limited", RateLimit: &twenty})
	if err != nil || created.RateLimit == nil || *created.RateLimit != 20 {
		t.Fatalf("created %+v, %v", created, err)
	}
	t.Cleanup(func() { _ = c.DeleteWebhook(context.Background(), "demo", created.ID) })
	desc := "renamed"
	upd, err := c.UpdateWebhook(ctx, "demo", created.ID, client.WebhookPatch{Description: &desc})
	if err != nil || upd.RateLimit == nil || *upd.RateLimit != 20 {
		t.Fatalf("a patch without rateLimit: %+v, %v", upd, err)
	}
	five, none := 5, 0
	if upd, err = c.UpdateWebhook(ctx, "demo", created.ID, client.WebhookPatch{RateLimit: &five}); err != nil || *upd.RateLimit != 5 {
		t.Fatalf("set to 5: %+v, %v", upd, err)
	}
	if upd, err = c.UpdateWebhook(ctx, "demo", created.ID, client.WebhookPatch{RateLimit: &none}); err != nil || upd.RateLimit != nil {
		t.Fatalf("removed: %+v, %v", upd, err)
	}
	if got, err := c.GetWebhook(ctx, "demo", created.ID); err != nil || got.RateLimit != nil {
		t.Fatalf("get after the removal: %+v, %v", got, err)
	}
	bad := -1
	if _, err := c.UpdateWebhook(ctx, "demo", created.ID, client.WebhookPatch{RateLimit: &bad}); !client.HasStatus(err, http.StatusBadRequest) {
		t.Fatalf("rate limit -1: %v", err)
	}
}

// TestDeliveriesAndReplays: a failed test send is listed and shown with its attempt log,
// replayed alone and in a range, and the range replay's progress ends completed with every
// replay counted as failed (the receiver is still down).
func TestDeliveriesAndReplays(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := newClient(t)
	hook, err := c.CreateWebhook(ctx, "demo", client.NewWebhook{URL: receiverURL + "/replays"})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now().Add(-time.Second)
	var ids []string
	for range 3 {
		sent, err := c.TestWebhook(ctx, "demo", hook.ID)
		if err != nil || sent.Delivered || sent.StatusCode == nil || *sent.StatusCode != 503 {
			t.Fatalf("test send: %+v %v", sent, err)
		}
		ids = append(ids, sent.DeliveryID)
	}
	f := client.DeliveryFilter{WebhookID: hook.ID, Status: []string{client.StatusFailed}, Since: start, Limit: 2}
	page, err := c.ListDeliveries(ctx, f)
	if err != nil || len(page.Items) != 2 || page.NextCursor == "" {
		t.Fatalf("first page: %+v %v", page, err)
	}
	f.Cursor = page.NextCursor
	rest, err := c.ListDeliveries(ctx, f)
	if err != nil || len(rest.Items) != 1 || rest.NextCursor != "" || rest.Items[0].ID != ids[0] {
		t.Fatalf("second page: %+v %v", rest, err)
	}
	d, err := c.GetDelivery(ctx, ids[0])
	if err != nil || d.Status != client.StatusFailed || len(d.AttemptLog) != 1 || d.AttemptLog[0].StatusCode == nil ||
		*d.AttemptLog[0].StatusCode != 503 || !strings.Contains(d.AttemptLog[0].ResponseBody, "maintenance") {
		t.Fatalf("delivery %+v %v", d, err)
	}

	one, err := c.ReplayDelivery(ctx, ids[0])
	if err != nil || one.ReplayOf != ids[0] || one.DeliveryID == "" || one.DeliveryID == ids[0] {
		t.Fatalf("replay one: %+v %v", one, err)
	}
	rng := client.ReplayRange{WebhookID: hook.ID, Since: start, Until: time.Now().Add(time.Second), DryRun: true}
	dry, err := c.StartReplay(ctx, rng)
	if err != nil || !dry.DryRun || dry.ReplayID != "" || dry.Matched != 2 { // ids[0] is replayed already
		t.Fatalf("dry run: %+v %v", dry, err)
	}
	rng.DryRun = false
	started, err := c.StartReplay(ctx, rng)
	if err != nil || started.ReplayID == "" || started.Matched != 2 {
		t.Fatalf("replay range: %+v %v", started, err)
	}
	var rp *client.Replay
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if rp, err = c.GetReplay(ctx, started.ReplayID); err != nil {
			t.Fatal(err)
		}
		if rp.Status != client.ReplayRunning || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if rp.Status != client.ReplayCompleted || rp.Matched != 2 || rp.Done != 2 || rp.Failed != 2 || rp.Succeeded != 0 ||
		rp.Filter.WebhookID != hook.ID || rp.ID != started.ReplayID {
		t.Fatalf("replay progress %+v", rp)
	}
	// The same range while nothing runs matches nothing more; a bad status is refused.
	_, err = c.StartReplay(ctx, client.ReplayRange{WebhookID: hook.ID, Status: []string{client.StatusPending}, Since: start, Until: time.Now()})
	var apiErr *client.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 {
		t.Fatalf("replay of pending: %v", err)
	}
	if _, ok := apiErr.Field("status"); !ok {
		t.Fatalf("replay of pending: %+v does not name status", apiErr)
	}
}

// TestSignInAndRefresh: a global account signs in, trades the refresh token for an access
// token that works, and signs out, after which the refresh token is refused.
func TestSignInAndRefresh(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	anon, err := client.New(apiURL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := anon.SignIn(ctx, adminEmail, "wrong password"); !client.HasStatus(err, http.StatusUnauthorized) {
		t.Fatalf("wrong password: %v", err)
	}
	tok, err := anon.SignIn(ctx, adminEmail, adminPass)
	if err != nil || tok.RefreshToken == "" {
		t.Fatalf("sign-in: %+v %v", tok, err)
	}
	access, err := anon.Refresh(ctx, tok.RefreshToken)
	if err != nil || access == "" {
		t.Fatalf("refresh: %v", err)
	}
	if _, err := anon.WithToken(access).ListWebhooks(ctx, "demo"); err != nil {
		t.Fatalf("with the access token: %v", err)
	}
	if _, err := anon.ListWebhooks(ctx, "demo"); !client.HasStatus(err, http.StatusUnauthorized) {
		t.Fatalf("without a token: %v", err)
	}
	if err := anon.SignOut(ctx, tok.RefreshToken); err != nil {
		t.Fatal(err)
	}
	if _, err := anon.Refresh(ctx, tok.RefreshToken); !client.HasStatus(err, http.StatusUnauthorized) {
		t.Fatalf("refresh after sign-out: %v", err)
	}
}

// TestNoRedirectWithTheToken: an API URL that redirects elsewhere gets an *Error naming the
// redirect; the token never reaches the other address, whatever the http.Client given says.
func TestNoRedirectWithTheToken(t *testing.T) {
	t.Parallel()
	var reached atomic.Int32
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
	}))
	defer elsewhere.Close()
	redirector := httptest.NewServer(http.RedirectHandler(elsewhere.URL+"/api/admin/deliveries", http.StatusFound))
	defer redirector.Close()
	follows := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return nil }}
	c, err := client.New(redirector.URL, client.WithToken("d24pat_secret_token"), client.WithHTTPClient(follows))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.ListDeliveries(context.Background(), client.DeliveryFilter{})
	var apiErr *client.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusFound || apiErr.Location != elsewhere.URL+"/api/admin/deliveries" {
		t.Fatalf("redirect: %v", err)
	}
	if reached.Load() != 0 {
		t.Fatal("the redirect was followed")
	}
	if follows.CheckRedirect == nil {
		t.Fatal("the caller's http.Client was changed")
	}
}

// TestContext: a cancelled context stops the call.
func TestContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := newClient(t).ListDeliveries(ctx, client.DeliveryFilter{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}

func TestNewRefusesBadURLs(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"", "127.0.0.1:8080", "ftp://h/", "http://user:pw@h/"} {
		_, err := client.New(u)
		if err == nil || strings.Contains(err.Error(), "pw") {
			t.Errorf("New(%q): %v", u, err)
		}
	}
	c, err := client.New("https://h.example/prefix/")
	if err != nil || c.BaseURL() != "https://h.example/prefix" {
		t.Errorf("prefix: %v %v", c, err)
	}
}

func TestParseTime(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	cases := map[string]time.Time{
		"":                          {},
		"  ":                        {},
		"2026-11-20T10:00:00+01:00": time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC),
		"2026-11-20T10:00:00.5Z":    time.Date(2026, 11, 20, 10, 0, 0, 5e8, time.UTC),
		"24h":                       time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC),
		"90m":                       time.Date(2026, 11, 23, 10, 30, 0, 0, time.UTC),
		"0s":                        now,
	}
	for in, want := range cases {
		got, err := client.ParseTime(in, now)
		if err != nil || !got.Equal(want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"yesterday", "-5m", "2026-13-01", "2026-11-20", "24"} {
		if _, err := client.ParseTime(bad, now); err == nil || !strings.Contains(err.Error(), "RFC 3339") {
			t.Errorf("ParseTime(%q): %v", bad, err)
		}
	}
}

// FuzzParseTime: any input is parsed or refused, never a panic; an accepted time is UTC and
// never after now (durations go back).
func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"24h", "2026-11-20T10:00:00Z", "-1h", "1e3h", "9999999h", "2026-11-20T10:00:00+14:00"} {
		f.Add(s)
	}
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		got, err := client.ParseTime(s, now)
		if err != nil {
			return
		}
		if got.Location() != time.UTC {
			t.Fatalf("ParseTime(%q) = %v, not UTC", s, got)
		}
		if _, perr := time.Parse(time.RFC3339, strings.TrimSpace(s)); perr != nil && got.After(now) {
			t.Fatalf("duration %q went forward: %v", s, got)
		}
	})
}
