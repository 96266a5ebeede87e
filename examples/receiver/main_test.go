package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/pkg/webhook"
)

// syncBuffer is a bytes.Buffer safe for the server goroutine and the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startReceiver runs the receiver with args and env on a free port and returns its webhook URL
// and its standard output.
func startReceiver(t *testing.T, args []string, env map[string]string) (string, *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"-addr", "127.0.0.1:0"}, args...), func(k string) string { return env[k] }, &stdout, &stderr)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})

	var addr string
	for deadline := time.Now().Add(10 * time.Second); addr == ""; {
		if time.Now().After(deadline) {
			t.Fatalf("receiver did not start; stdout %q stderr %q", stdout.String(), stderr.String())
		}
		for line := range strings.Lines(stdout.String()) {
			if _, rest, ok := strings.Cut(line, "msg=listening addr="); ok {
				addr, _, _ = strings.Cut(rest, " ")
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return "http://" + addr + "/webhook", &stdout
}

// newClient returns a delivery client allowed to reach the loopback receiver.
func newClient(t *testing.T) *webhook.Client {
	t.Helper()
	_, loopback, _ := net.ParseCIDR("127.0.0.0/8")
	client, err := webhook.NewClient(webhook.ClientConfig{AllowNets: []*net.IPNet{loopback}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	return client
}

func TestReceiver(t *testing.T) {
	secret := webhook.NewSecret()
	const jwtSecret = "an opaque shared secret, 32+ characters"
	env := map[string]string{"WEBHOOK_SECRET": secret, "WEBHOOK_JWT_SECRET": jwtSecret}
	url, stdout := startReceiver(t, nil, env)
	client := newClient(t)
	ctx := context.Background()
	req := &webhook.Request{
		URL:       url,
		MessageID: "evt_1",
		EventType: "survey.session.submitted",
		Body:      []byte(`{"id":"evt_1","type":"survey.session.submitted","surveyId":"demo-survey","username":"resp-1","data":{}}`),
		Secrets:   []string{secret},
		JWTKey:    []byte(jwtSecret),
		Issuer:    "intake24",
		Username:  "resp-1",
		SurveyID:  "demo-survey",
	}

	if res := client.Send(ctx, req); !res.Delivered || res.StatusCode != http.StatusNoContent {
		t.Fatalf("first delivery = %+v", res)
	}
	if res := client.Send(ctx, req); !res.Delivered || res.StatusCode != http.StatusOK {
		t.Fatalf("repeated delivery = %+v", res)
	}

	forged := *req
	forged.Secrets = []string{webhook.NewSecret()}
	if res := client.Send(ctx, &forged); res.Delivered || res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("delivery with another secret = %+v", res)
	}
	noJWT := *req
	noJWT.JWTKey = nil
	if res := client.Send(ctx, &noJWT); res.Delivered || res.StatusCode != http.StatusBadRequest {
		t.Fatalf("delivery without a JWT = %+v", res)
	}
	mismatch := *req
	mismatch.MessageID = "evt_2"
	if res := client.Send(ctx, &mismatch); res.Delivered || res.StatusCode != http.StatusBadRequest {
		t.Fatalf("delivery whose body id differs from webhook-id = %+v", res)
	}

	out := stdout.String()
	if n := strings.Count(out, "msg=event "); n != 1 {
		t.Errorf("printed %d events, want 1:\n%s", n, out)
	}
	for _, want := range []string{"id=evt_1", "type=survey.session.submitted", "surveyId=demo-survey", "username=resp-1", "msg=duplicate"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, secret) || strings.Contains(out, jwtSecret) {
		t.Error("output contains a secret")
	}
}

// A v1a receiver: public keys from a repeated flag, a comma-separated flag, or the environment
// verify deliveries signed with the matching whsk_ keys, during a rotation too.
func TestReceiverPublicKey(t *testing.T) {
	key1, pub1 := webhook.NewSigningKey()
	key2, pub2 := webhook.NewSigningKey()
	key3, pub3 := webhook.NewSigningKey()
	strangerKey, _ := webhook.NewSigningKey()
	tests := []struct {
		name string
		args []string
		env  map[string]string
	}{
		{"repeated flag", []string{"-public-key", pub1, "-public-key", pub2 + "," + pub3}, nil},
		{"environment", nil, map[string]string{"WEBHOOK_PUBLIC_KEY": pub1 + ", " + pub2 + "," + pub3}},
		{"flag wins over environment", []string{"-public-key", pub1 + "," + pub2 + "," + pub3}, map[string]string{"WEBHOOK_PUBLIC_KEY": "whpk_unused"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url, stdout := startReceiver(t, tt.args, tt.env)
			client := newClient(t)
			send := func(id string, secrets ...string) webhook.Result {
				return client.Send(context.Background(), &webhook.Request{
					URL: url, MessageID: id, EventType: "survey.session.submitted",
					Body:    []byte(`{"id":"` + id + `","type":"survey.session.submitted","surveyId":"demo-survey"}`),
					Secrets: secrets,
				})
			}
			for i, secrets := range [][]string{{key1}, {key2}, {key3}, {strangerKey, key2}, {webhook.NewSecret(), key1}} {
				if res := send("evt_"+string(rune('a'+i)), secrets...); res.StatusCode != http.StatusNoContent {
					t.Errorf("delivery %d = %+v, want 204", i, res)
				}
			}
			if res := send("evt_x", strangerKey); res.StatusCode != http.StatusUnauthorized {
				t.Errorf("delivery signed by an unknown key = %+v, want 401", res)
			}
			if res := send("evt_y", webhook.NewSecret()); res.StatusCode != http.StatusUnauthorized {
				t.Errorf("delivery with only an unknown v1 secret = %+v, want 401", res)
			}
			if out := stdout.String(); strings.Count(out, "msg=event ") != 5 || !strings.Contains(out, "publicKeys=3") {
				t.Errorf("output:\n%s", out)
			}
		})
	}
}

func TestReceiverNeedsSecret(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), nil, func(string) string { return "" }, &out, &out)
	if err == nil || !strings.Contains(err.Error(), "-secret") || !strings.Contains(err.Error(), "-public-key") {
		t.Fatalf("run without a secret: %v", err)
	}
}

// Keys of the wrong kind are refused at start, saying what they are, without repeating them.
func TestReceiverRejectsWrongKeys(t *testing.T) {
	signingKey, publicKey := webhook.NewSigningKey()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"signing key as public key", []string{"-public-key", signingKey}, "whsk_ secret signing key"},
		{"public key as secret", []string{"-secret", publicKey}, "v1a"},
		{"malformed public key", []string{"-public-key", "whpk_AAAA"}, "public key 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := run(context.Background(), append([]string{"-addr", "127.0.0.1:0"}, tt.args...), func(string) string { return "" }, &out, &out)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("run: err = %v, want it to say %q", err, tt.want)
			}
			if strings.Contains(err.Error()+out.String(), signingKey[5:20]) || strings.Contains(err.Error()+out.String(), publicKey[5:20]) {
				t.Errorf("output repeats a key: %v\n%s", err, out.String())
			}
		})
	}
}

func TestDedupe(t *testing.T) {
	d := newDedupe(time.Hour, 2)
	now := time.Unix(1_800_000_000, 0)
	steps := []struct {
		id    string
		at    time.Duration
		first bool
	}{
		{"a", 0, true},
		{"a", time.Minute, false},
		{"b", time.Minute, true},
		{"a", 2 * time.Hour, true}, // expired, and the full map evicts
		{"c", 2 * time.Hour, true},
	}
	for i, s := range steps {
		if got := d.first(s.id, now.Add(s.at)); got != s.first {
			t.Errorf("step %d: first(%q) = %v, want %v", i, s.id, got, s.first)
		}
		if len(d.seen) > 2 {
			t.Errorf("step %d: %d ids kept, max 2", i, len(d.seen))
		}
	}
}
