package config

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"testing"
)

// FuzzLoad feeds arbitrary values to every variable: Load must either refuse them with an
// *Error naming a variable or return a usable configuration, and the logged configuration must
// never show the secrets it was given.
func FuzzLoad(f *testing.F) {
	key, hexKey := "q3Jc0xq8y1sV0mZ4pQ9Lr2bT6uW8eH5nK7dF1gA3sXo=", "8f0e2a6b4c1d9e7f3a5b0c2d4e6f8091a2b3c4d5e6f708192a3b4c5d6e7f8091"
	f.Add("127.0.0.1:8080", "postgres://u:pw-secret@db/x", "nats://tok-secret@n1:4222,nats://n2", "0s,5s", "10.0.0.0/8,::1", "s3cret-s3cret-s3cret-s3cret-s3cret", "64", "10m", key, hexKey)
	f.Add(":0", "", "", "", "", "", "", "", "", "")
	f.Add("[::1]:0", "postgres://db/x?password=pw-secret", "tls://user:pw-secret@n1", "1h,-1s", "1.2.3.4", "short", "-1", "0s", "short", key+",x")
	f.Add("host", "postgresql://%zz", "nats://%41", ",,,", "300.0.0.0/8", strings.Repeat("x", 40), "9999999999999999999999", "1e9h", hexKey, ","+key+",")
	f.Fuzz(func(t *testing.T, addr, dbURL, natsURL, schedule, nets, secret, conc, ttl, secretsKey, previousKeys string) {
		env := map[string]string{
			"HTTP_ADDR": addr, "DATABASE_URL": dbURL, "NATS_URL": natsURL,
			"WEBHOOK_RETRY_SCHEDULE": schedule, "WEBHOOK_ALLOW_NETS": nets, "TOKEN_SECRET": secret,
			"DISPATCH_CONCURRENCY": conc, "ACCESS_TOKEN_TTL": ttl, "ADMIN_PASSWORD": secret,
			"SECRETS_KEY": secretsKey, "SECRETS_KEY_PREVIOUS": previousKeys,
		}
		for _, program := range []string{"api", "dispatcher"} {
			c, err := Load(program, nil, func(k string) string { return env[k] }, 2, io.Discard)
			if err != nil {
				var ce *Error
				if !errors.As(err, &ce) || ce.Var == "" {
					t.Fatalf("%s: error %v is not a configuration error naming its variable", program, err)
				}
				continue
			}
			if len(c.RetrySchedule) == 0 || c.Concurrency <= 0 || c.EndpointConcurrency <= 0 || c.AccessTokenTTL <= 0 {
				t.Fatalf("%s: accepted an unusable configuration %+v", program, c)
			}
			var buf bytes.Buffer
			slog.New(slog.NewTextHandler(&buf, nil)).Info("config", "config", c)
			logged := buf.String()
			given := strings.Split(secretsKey+","+previousKeys, ",")
			for i := range given {
				given[i] = strings.TrimSpace(given[i])
			}
			for _, s := range append(secretsOf(c), given...) {
				if len(s) >= 4 && strings.Contains(logged, s) {
					t.Fatalf("%s: logged configuration shows the secret %q: %s", program, s, logged)
				}
			}
		}
	})
}

// secretsOf lists the secret values of a configuration: the token secret, the admin password,
// the secrets keys (as base64 and hex), and the credentials inside the connection URLs.
func secretsOf(c *Config) []string {
	out := []string{c.TokenSecret, c.AdminPassword}
	for _, k := range append([][]byte{c.SecretsKey}, c.SecretsKeyPrevious...) {
		if k != nil {
			out = append(out, base64.StdEncoding.EncodeToString(k)[:12], base64.RawURLEncoding.EncodeToString(k)[:12], hex.EncodeToString(k)[:12])
		}
	}
	for _, raw := range strings.Split(c.DatabaseURL+","+c.NATSURL, ",") {
		u, err := url.Parse(strings.TrimSpace(raw))
		if err != nil {
			continue
		}
		if u.User != nil {
			if pw, ok := u.User.Password(); ok {
				out = append(out, pw)
			} else if u.Scheme != "postgres" && u.Scheme != "postgresql" {
				out = append(out, u.User.Username()) // a NATS token
			}
		}
		for k, vs := range u.Query() {
			if k := strings.ToLower(k); strings.Contains(k, "password") || strings.Contains(k, "token") {
				out = append(out, vs...)
			}
		}
	}
	return out
}
