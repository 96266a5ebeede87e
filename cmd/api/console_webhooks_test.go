package main

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestConsoleListsAndEnablesDisabledWebhooks: the console's first page lists a disabled
// webhook with its reason and disabled time; its Enable button (a same-origin POST) re-enables
// it through the API, and a cross-origin post of the same form changes nothing. The PATCH that
// disabled it counted one webhook.disabled in /metrics.
func TestConsoleListsAndEnablesDisabledWebhooks(t *testing.T) {
	t.Parallel()
	f := newConsoleFixture(t)
	token := adminToken(t, f.url, f.email, f.password)
	var hook struct{ ID string }
	if code := apiCall(t, "POST", f.url+"/api/admin/surveys/demo/webhooks", token,
		map[string]any{"url": f.receiverURL + "/other", "events": []string{"webhook.disabled", "delivery.exhausted"}}, &hook); code != 201 {
		t.Fatalf("create webhook subscribing to the operational events: %d", code)
	}
	if code := apiCall(t, "PATCH", f.url+"/api/admin/surveys/demo/webhooks/"+hook.ID, token, map[string]any{"disabled": true}, nil); code != 200 {
		t.Fatalf("disable: %d", code)
	}
	resp, err := http.Get(f.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), `dispatch24_operational_events_total{type="webhook.disabled"} 1`) {
		t.Errorf("/metrics lacks one webhook.disabled:\n%s", grepLines(string(metrics), "operational"))
	}

	b := signedInConsole(t, f)
	action := "/console/webhooks/demo/" + hook.ID + "/enable"
	code, page := b.get("/console/")
	if code != 200 || !strings.Contains(page, "Disabled webhooks") || !strings.Contains(page, hook.ID) ||
		!strings.Contains(page, `title="manual"`) || !strings.Contains(page, `action="`+action+`"`) {
		t.Fatalf("first page (%d) does not list the disabled webhook:\n%s", code, page)
	}

	req, _ := http.NewRequest(http.MethodPost, f.url+action, strings.NewReader(""))
	req.Header.Set("Origin", "https://evil.example")
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err = b.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-origin enable: %d, want 403", resp.StatusCode)
	}
	var got struct {
		Disabled            bool
		DisabledReason      string
		ConsecutiveFailures int
	}
	apiCall(t, "GET", f.url+"/api/admin/surveys/demo/webhooks/"+hook.ID, token, nil, &got)
	if !got.Disabled {
		t.Fatal("a cross-origin post enabled the webhook")
	}

	code, page, landed := b.post(action, url.Values{})
	if code != 200 || landed != "/console/" || !strings.Contains(page, "Webhook "+hook.ID+" enabled.") {
		t.Errorf("enable: %d at %s\n%s", code, landed, page)
	}
	apiCall(t, "GET", f.url+"/api/admin/surveys/demo/webhooks/"+hook.ID, token, nil, &got)
	if got.Disabled || got.DisabledReason != "" || got.ConsecutiveFailures != 0 {
		t.Errorf("after enable: %+v", got)
	}
	if _, page := b.get("/console/"); strings.Contains(page, "Disabled webhooks") {
		t.Error("the enabled webhook is still listed as disabled")
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
