package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/pkg/client"
)

// clientRoute is one API route the client calls, with the type it decodes the answer into
// (for a listing, the type of its items). The table is what a check against the OpenAPI
// document (GET /api/openapi.json) walks: each Method+Path must be an operation there, and
// the JSON field names of Response the properties of its answer's schema.
type clientRoute struct {
	Method, Path string
	Response     any // nil: no body, or one the client does not type
}

var clientRoutes = []clientRoute{
	{"POST", "/api/signin", client.Tokens{}},
	{"POST", "/api/refresh", nil},
	{"POST", "/api/signout", nil},
	{"POST", "/api/admin/user/personal-access-tokens", client.PersonalAccessToken{}},
	{"POST", "/api/admin/surveys/{surveyId}/webhooks", client.CreatedWebhook{}},
	{"GET", "/api/admin/surveys/{surveyId}/webhooks", client.Webhook{}},
	{"GET", "/api/admin/surveys/{surveyId}/webhooks/{webhookId}", client.Webhook{}},
	{"PATCH", "/api/admin/surveys/{surveyId}/webhooks/{webhookId}", client.UpdatedWebhook{}},
	{"DELETE", "/api/admin/surveys/{surveyId}/webhooks/{webhookId}", nil},
	{"POST", "/api/admin/surveys/{surveyId}/webhooks/{webhookId}/rotate-secret", client.RotatedSecret{}},
	{"POST", "/api/admin/surveys/{surveyId}/webhooks/{webhookId}/test", client.TestSend{}},
	{"GET", "/api/admin/deliveries", client.Delivery{}},
	{"GET", "/api/admin/deliveries/{id}", client.Delivery{}},
	{"POST", "/api/admin/deliveries/{id}/replay", client.ReplayedDelivery{}},
	{"POST", "/api/admin/deliveries/replay", client.ReplayStarted{}},
	{"GET", "/api/admin/replays/{replayId}", client.Replay{}},
}

// recording is a transport that notes each request's method and path, and the answer.
type recording struct {
	mu     sync.Mutex
	seen   []string
	bodies map[string][]byte
}

func (r *recording) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	r.mu.Lock()
	defer r.mu.Unlock()
	key := req.Method + " " + req.URL.Path
	r.seen = append(r.seen, key)
	r.bodies[key] = body
	return resp, nil
}

// jsonFields returns the JSON names of t's fields (embedded structs' included) and which of
// them are always sent (no omitempty).
func jsonFields(t reflect.Type) (names, always []string) {
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous && f.Type.Kind() == reflect.Struct {
			n, a := jsonFields(f.Type)
			names, always = append(names, n...), append(always, a...)
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		names = append(names, name)
		if !strings.Contains(opts, "omitempty") {
			always = append(always, name)
		}
	}
	return names, always
}

// TestClientRoutes calls every method of the client once against the real API and checks
// that the requests it sends are exactly the table's routes, and that each was answered by a
// route of the API (a success).
func TestClientRoutes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rec := &recording{bodies: map[string][]byte{}}
	anon, err := client.New(apiURL, client.WithHTTPClient(&http.Client{Transport: rec, Timeout: time.Minute}))
	if err != nil {
		t.Fatal(err)
	}
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	tok, err := anon.SignIn(ctx, adminEmail, adminPass)
	must("SignIn", err)
	access, err := anon.Refresh(ctx, tok.RefreshToken)
	must("Refresh", err)
	c := anon.WithToken(access)
	_, err = c.CreatePersonalAccessToken(ctx, "routes test", time.Now().Add(time.Hour))
	must("CreatePersonalAccessToken", err)
	hook, err := c.CreateWebhook(ctx, "demo", client.NewWebhook{URL: receiverURL + "/routes"})
	must("CreateWebhook", err)
	_, err = c.ListWebhooks(ctx, "demo")
	must("ListWebhooks", err)
	_, err = c.GetWebhook(ctx, "demo", hook.ID)
	must("GetWebhook", err)
	desc := "routes"
	_, err = c.UpdateWebhook(ctx, "demo", hook.ID, client.WebhookPatch{Description: &desc})
	must("UpdateWebhook", err)
	_, err = c.RotateSecret(ctx, "demo", hook.ID)
	must("RotateSecret", err)
	sent, err := c.TestWebhook(ctx, "demo", hook.ID)
	must("TestWebhook", err)
	_, err = c.ListDeliveries(ctx, client.DeliveryFilter{WebhookID: hook.ID})
	must("ListDeliveries", err)
	_, err = c.GetDelivery(ctx, sent.DeliveryID)
	must("GetDelivery", err)
	_, err = c.ReplayDelivery(ctx, sent.DeliveryID)
	must("ReplayDelivery", err)
	started, err := c.StartReplay(ctx, client.ReplayRange{WebhookID: hook.ID, Status: []string{client.StatusFailed},
		Since: time.Now().Add(-time.Hour), Until: time.Now().Add(time.Minute)})
	must("StartReplay", err)
	_, err = c.GetReplay(ctx, started.ReplayID)
	must("GetReplay", err)
	must("DeleteWebhook", c.DeleteWebhook(ctx, "demo", hook.ID))
	must("SignOut", anon.SignOut(ctx, tok.RefreshToken))

	ids := strings.NewReplacer(
		"/surveys/demo/", "/surveys/{surveyId}/", "/"+hook.ID, "/{webhookId}",
		"/"+sent.DeliveryID, "/{id}", "/"+started.ReplayID, "/{replayId}")
	var got, want []string
	answers := map[string][]byte{}
	for _, s := range rec.seen {
		if p := ids.Replace(s); !slices.Contains(got, p) {
			got = append(got, p)
			answers[p] = rec.bodies[s]
		}
	}
	for _, r := range clientRoutes {
		want = append(want, r.Method+" "+r.Path)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("the client called\n  %s\nthe table lists\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}

	// The answers' fields are the client types' fields: none the client lacks, none it
	// expects in vain.
	for _, r := range clientRoutes {
		if r.Response == nil {
			continue
		}
		key := r.Method + " " + r.Path
		var answer map[string]json.RawMessage
		if err := json.Unmarshal(answers[key], &answer); err != nil {
			t.Errorf("%s: answer %s: %v", key, answers[key], err)
			continue
		}
		if items, ok := answer["items"]; ok {
			var list []map[string]json.RawMessage
			if err := json.Unmarshal(items, &list); err != nil || len(list) == 0 {
				t.Errorf("%s: items %s: %v", key, items, err)
				continue
			}
			answer = list[0]
		}
		names, always := jsonFields(reflect.TypeOf(r.Response))
		for k := range answer {
			if !slices.Contains(names, k) {
				t.Errorf("%s: the API answers %q, which %T lacks", key, k, r.Response)
			}
		}
		for _, k := range always {
			if _, ok := answer[k]; !ok {
				t.Errorf("%s: %T expects %q, which the API does not send", key, r.Response, k)
			}
		}
	}
}
