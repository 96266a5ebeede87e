package config

import (
	"errors"
	"flag"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaults(t *testing.T) {
	t.Parallel()
	c, err := Load("api", nil, env(nil), 2, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != "127.0.0.1:8080" || c.DataDir != "./data" || !c.Embedded || !c.EmbeddedStore() || !c.DispatchInProcess {
		t.Errorf("defaults: %+v", c)
	}
	if c.PublicURL != "http://127.0.0.1:8080" || c.SurveyAppURL != "http://127.0.0.1:8080/survey" {
		t.Errorf("urls: %s %s", c.PublicURL, c.SurveyAppURL)
	}
	if c.TokenIssuer != "intake24" || c.AccessTokenTTL != 10*time.Minute || c.RefreshTokenTTL != 720*time.Hour {
		t.Errorf("tokens: %+v", c)
	}
	if len(c.RetrySchedule) != 10 || c.RetrySchedule[0] != 0 || c.RetrySchedule[9] != 24*time.Hour {
		t.Errorf("schedule %v", c.RetrySchedule)
	}
	if c.WebhookTimeout != 15*time.Second || c.Concurrency != 128 || c.LogLevel != slog.LevelInfo {
		t.Errorf("dispatch: %+v", c)
	}
}

func TestFlagsOverrideEnv(t *testing.T) {
	t.Parallel()
	c, err := Load("api", []string{"-http-addr", "127.0.0.1:0", "-webhook-allow-nets=127.0.0.0/8,::1"},
		env(map[string]string{"HTTP_ADDR": "0.0.0.0:9", "LOG_FORMAT": "json"}), 2, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPAddr != "127.0.0.1:0" || c.LogFormat != "json" || len(c.AllowNets) != 2 || c.AllowNets[1].String() != "::1/128" {
		t.Errorf("got %+v nets %v", c, c.AllowNets)
	}
}

func TestProduction(t *testing.T) {
	t.Parallel()
	base := map[string]string{
		"DATABASE_URL": "postgres://u:pw@db:5432/d24",
		"NATS_URL":     "nats://n1:4222,nats://n2:4222",
		"TOKEN_SECRET": strings.Repeat("s", 32),
		"SECRETS_KEY":  testSecretsKey,
	}
	c, err := Load("api", nil, env(base), 2, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Embedded || c.EmbeddedStore() || c.DispatchInProcess {
		t.Errorf("production: %+v", c)
	}
	logged := c.LogValue().String()
	if strings.Contains(logged, "pw") || strings.Contains(logged, strings.Repeat("s", 32)) || strings.Contains(logged, testSecretsKey[:8]) {
		t.Errorf("secret in log value: %s", logged)
	}
}

func TestInvalid(t *testing.T) {
	t.Parallel()
	cases := map[string]map[string]string{
		"HTTP_ADDR":              {"HTTP_ADDR": "nope"},
		"DATABASE_URL":           {"DATABASE_URL": "mysql://x"},
		"TOKEN_SECRET":           {"DATABASE_URL": "postgres://db/x"},
		"NATS_URL":               {"NATS_URL": "http://x"},
		"WEBHOOK_RETRY_SCHEDULE": {"WEBHOOK_RETRY_SCHEDULE": "1s,soon"},
		"WEBHOOK_ALLOW_NETS":     {"WEBHOOK_ALLOW_NETS": "10.0.0.0/99"},
		"WEBHOOK_TIMEOUT":        {"WEBHOOK_TIMEOUT": "0s"},
		"ACCESS_TOKEN_TTL":       {"ACCESS_TOKEN_TTL": "-1m"},
		"LOG_FORMAT":             {"LOG_FORMAT": "xml"},
		"LOG_LEVEL":              {"LOG_LEVEL": "loud"},
		"DISPATCH_CONCURRENCY":   {"DISPATCH_CONCURRENCY": "0"},
		"DISPATCH_IN_PROCESS":    {"DISPATCH_IN_PROCESS": "maybe"},
		"PUBLIC_URL":             {"PUBLIC_URL": "ftp://x"},
		"ADMIN_PASSWORD":         {"ADMIN_PASSWORD": "short"},
		"SECRETS_KEY":            {"SECRETS_KEY": "short"},
		"SECRETS_KEY_PREVIOUS":   {"SECRETS_KEY_PREVIOUS": testSecretsKey + ",short"},
		"TRUSTED_PROXIES":        {"TRUSTED_PROXIES": "10.0.0.0/8,proxy.internal"},
		"RETENTION":              {"RETENTION": "-1h"},
		"NATS_STREAM_MAX_BYTES":  {"NATS_STREAM_MAX_BYTES": "2GB"},
		"NATS_STREAM_MAX_MSGS":   {"NATS_STREAM_MAX_MSGS": "-1"},
	}
	for name, vars := range cases {
		_, err := Load("api", nil, env(vars), 2, io.Discard)
		var cerr *Error
		if !errors.As(err, &cerr) || cerr.Var != name {
			t.Errorf("%s: got %v", name, err)
		}
	}
	if _, err := Load("api", []string{"-no-such-flag"}, env(nil), 2, io.Discard); err == nil {
		t.Error("unknown flag accepted")
	}
}

func TestRedactURL(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"postgres://u:secret@h/db":      "postgres://u:redacted@h/db",
		"postgres://u@h/db?password=x":  "postgres://u@h/db?password=%5Bredacted%5D",
		"nats://a:1,nats://user:pw@b:2": "nats://a:1,nats://user:redacted@b:2",
		"":                              "",
	}
	for in, want := range cases {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestTokenSecretByProgram: the api signs and verifies tokens, so with PostgreSQL it needs
// TOKEN_SECRET; the dispatcher only delivers webhooks and runs without one, but a secret it
// is given must still be long enough.
func TestTokenSecretByProgram(t *testing.T) {
	t.Parallel()
	prod := map[string]string{"DATABASE_URL": "postgres://db/x", "NATS_URL": "nats://n1:4222", "SECRETS_KEY": testSecretsKey}
	with := func(secret string) map[string]string {
		m := map[string]string{"TOKEN_SECRET": secret}
		for k, v := range prod {
			m[k] = v
		}
		return m
	}
	cases := []struct {
		program string
		vars    map[string]string
		wantErr bool
	}{
		{"api", prod, true},
		{"api", with("short"), true},
		{"api", with(strings.Repeat("s", 32)), false},
		{"dispatcher", prod, false},
		{"dispatcher", with("short"), true},
		{"dispatcher", with(strings.Repeat("s", 32)), false},
		// Embedded mode needs none from anyone: the api keeps one in DATA_DIR.
		{"api", nil, false},
		{"dispatcher", nil, false},
	}
	for _, tc := range cases {
		c, err := Load(tc.program, nil, env(tc.vars), 2, io.Discard)
		if !tc.wantErr {
			if err != nil {
				t.Errorf("%s %v: %v", tc.program, tc.vars, err)
			} else if c.TokenSecret != tc.vars["TOKEN_SECRET"] {
				t.Errorf("%s %v: TokenSecret = %q", tc.program, tc.vars, c.TokenSecret)
			}
			continue
		}
		var cerr *Error
		if !errors.As(err, &cerr) || cerr.Var != "TOKEN_SECRET" {
			t.Errorf("%s %v: got %v, want an error naming TOKEN_SECRET", tc.program, tc.vars, err)
		}
	}
}

// testSecretsKey is a valid SECRETS_KEY (32 bytes, base64).
const testSecretsKey = "q3Jc0xq8y1sV0mZ4pQ9Lr2bT6uW8eH5nK7dF1gA3sXo="

// TestSecretsKey: with PostgreSQL both binaries read stored secrets and require SECRETS_KEY;
// embedded mode generates one. A key that is not 32 random bytes is refused with an error
// naming the variable and not quoting the value.
func TestSecretsKey(t *testing.T) {
	t.Parallel()
	prod := func(key, previous string) map[string]string {
		return map[string]string{"DATABASE_URL": "postgres://db/x", "NATS_URL": "nats://n1:4222",
			"TOKEN_SECRET": strings.Repeat("s", 32), "SECRETS_KEY": key, "SECRETS_KEY_PREVIOUS": previous}
	}
	hexKey := "8f0e2a6b4c1d9e7f3a5b0c2d4e6f8091a2b3c4d5e6f708192a3b4c5d6e7f8091"
	for _, program := range []string{"api", "dispatcher"} {
		c, err := Load(program, nil, env(prod(testSecretsKey, hexKey)), 2, io.Discard)
		if err != nil {
			t.Fatalf("%s: %v", program, err)
		}
		if len(c.SecretsKey) != 32 || len(c.SecretsKeyPrevious) != 1 || len(c.SecretsKeyPrevious[0]) != 32 {
			t.Errorf("%s: key %d bytes, previous %v", program, len(c.SecretsKey), c.SecretsKeyPrevious)
		}
		if logged := c.LogValue().String(); strings.Contains(logged, testSecretsKey[:10]) || strings.Contains(logged, hexKey[:10]) {
			t.Errorf("%s: a key is logged: %s", program, logged)
		}
		for name, tc := range map[string]struct{ key, previous, wantVar string }{
			"missing":       {"", "", "SECRETS_KEY"},
			"short":         {"c2hvcnQta2V5", "", "SECRETS_KEY"},
			"passphrase":    {"correct horse battery staple, thrice over", "", "SECRETS_KEY"},
			"zeros":         {strings.Repeat("0", 64), "", "SECRETS_KEY"},
			"bad previous":  {testSecretsKey, hexKey + ",AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "SECRETS_KEY_PREVIOUS"},
			"previous only": {"", testSecretsKey, "SECRETS_KEY"},
		} {
			_, err := Load(program, nil, env(prod(tc.key, tc.previous)), 2, io.Discard)
			var cerr *Error
			if !errors.As(err, &cerr) || cerr.Var != tc.wantVar {
				t.Errorf("%s %s: got %v, want an error naming %s", program, name, err, tc.wantVar)
				continue
			}
			if tc.key != "" && strings.Contains(err.Error(), tc.key) {
				t.Errorf("%s %s: the error quotes the key: %v", program, name, err)
			}
		}
	}
	// Embedded mode: none needed (generated into DATA_DIR), a given one is checked.
	if c, err := Load("api", nil, env(nil), 2, io.Discard); err != nil || c.SecretsKey != nil {
		t.Errorf("embedded without SECRETS_KEY: %v, key %x", err, c.SecretsKey)
	}
	if _, err := Load("api", nil, env(map[string]string{"SECRETS_KEY": "short"}), 2, io.Discard); err == nil {
		t.Error("embedded: a short SECRETS_KEY was accepted")
	}
}

// TestTrustedProxies: TRUSTED_PROXIES is empty by default, takes CIDRs and bare addresses
// from the environment or -trusted-proxies, and is logged.
func TestTrustedProxies(t *testing.T) {
	t.Parallel()
	c, err := Load("api", nil, env(nil), 2, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.TrustedProxies) != 0 {
		t.Errorf("default trusted proxies %v, want none", c.TrustedProxies)
	}
	c, err = Load("api", []string{"-trusted-proxies", " 10.1.2.3/8, 192.0.2.7 ,fd00::/8,::ffff:198.51.100.0/120"}, env(nil), 2, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range c.TrustedProxies {
		got = append(got, p.String())
	}
	if want := "10.0.0.0/8,192.0.2.7/32,fd00::/8,198.51.100.0/24"; strings.Join(got, ",") != want {
		t.Errorf("trusted proxies %v, want %s", got, want)
	}
	if logged := c.LogValue().String(); !strings.Contains(logged, "trusted_proxies=10.0.0.0/8,192.0.2.7/32,fd00::/8,198.51.100.0/24") {
		t.Errorf("trusted proxies not logged: %s", logged)
	}
}

// TestErrorNamesTheFlag: a bad value given as a flag is reported under the flag's name, one
// from the environment under the variable's; a flag that overrides a good environment value
// is the one blamed.
func TestErrorNamesTheFlag(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"flag", []string{"-webhook-timeout", "soon"}, nil, "invalid configuration: flag -webhook-timeout: "},
		{"flag over a good env", []string{"-log-level=loud"}, map[string]string{"LOG_LEVEL": "info"}, "invalid configuration: flag -log-level: want debug"},
		{"env", nil, map[string]string{"WEBHOOK_TIMEOUT": "soon"}, "invalid configuration: WEBHOOK_TIMEOUT: "},
		{"env while another flag is given", []string{"-log-level", "debug"}, map[string]string{"HTTP_ADDR": "nope"}, "invalid configuration: HTTP_ADDR: want host:port"},
	}
	for _, c := range cases {
		_, err := Load("api", c.args, env(c.env), 2, io.Discard)
		var ce *Error
		if !errors.As(err, &ce) || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%s: got %v, want it to start with %q", c.name, err, c.want)
		}
	}
}

// TestHTTPAddrDefaultByProgram: the dispatcher's health and metrics listener has a default
// port of its own, so an api and a dispatcher with defaults run on one machine.
func TestHTTPAddrDefaultByProgram(t *testing.T) {
	t.Parallel()
	prod := env(map[string]string{"DATABASE_URL": "postgres://db/x", "NATS_URL": "nats://n1:4222",
		"SECRETS_KEY": testSecretsKey, "TOKEN_SECRET": strings.Repeat("s", 32)})
	for program, want := range map[string]string{"api": "127.0.0.1:8080", "dispatcher": "127.0.0.1:8081"} {
		c, err := Load(program, nil, prod, 2, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if c.HTTPAddr != want {
			t.Errorf("%s: HTTP_ADDR default %s, want %s", program, c.HTTPAddr, want)
		}
		for _, v := range VarsFor(program) {
			if v.Name == "HTTP_ADDR" && v.Default != want {
				t.Errorf("%s: VarsFor documents HTTP_ADDR default %s, want %s", program, v.Default, want)
			}
		}
	}
}

// TestResetPasswordNeedsStoreOnly: `api reset-password` writes a password hash and opens no
// sealed secret, so with PostgreSQL it needs DATABASE_URL alone; the api still requires both
// keys. ADMIN_* given explicitly are reported in AdminGiven, defaults are not.
func TestResetPasswordNeedsStoreOnly(t *testing.T) {
	t.Parallel()
	pg := env(map[string]string{"DATABASE_URL": "postgres://db/x"})
	if _, err := Load("reset-password", nil, pg, 2, io.Discard); err != nil {
		t.Errorf("reset-password with DATABASE_URL alone: %v", err)
	}
	if _, err := Load("api", nil, pg, 2, io.Discard); err == nil {
		t.Error("the api starts with DATABASE_URL and no TOKEN_SECRET or SECRETS_KEY")
	}
	var email string
	c, err := LoadCommand("reset-password", []string{"-email", "a@b", "-data-dir", "/tmp/x"},
		env(map[string]string{"ADMIN_PASSWORD": "long enough"}), 2, io.Discard,
		func(fs *flag.FlagSet) { fs.StringVar(&email, "email", "", "") })
	if err != nil || email != "a@b" || c.DataDir != "/tmp/x" {
		t.Fatalf("command flags mixed with variables' flags: %v, email %q, %+v", err, email, c)
	}
	if len(c.AdminGiven) != 1 || c.AdminGiven[0] != "ADMIN_PASSWORD" {
		t.Errorf("AdminGiven = %v, want [ADMIN_PASSWORD] (ADMIN_EMAIL was defaulted)", c.AdminGiven)
	}
}

// TestRetention: RETENTION defaults to 90 days, 0 keeps everything, and a value under an hour
// (the stream would drop events an outage kept from the dispatchers) or unparseable is
// refused; the stream limits take sizes with binary units, 0 for none.
func TestRetention(t *testing.T) {
	t.Parallel()
	c, err := Load("dispatcher", nil, env(map[string]string{"DATABASE_URL": "postgres://db/x", "NATS_URL": "nats://n:4222",
		"SECRETS_KEY": testSecretsKey}), 2, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Retention != 90*24*time.Hour || c.StreamMaxBytes != 2<<30 || c.StreamMaxMsgs != 1000000 {
		t.Errorf("defaults: retention %s, max bytes %d, max msgs %d", c.Retention, c.StreamMaxBytes, c.StreamMaxMsgs)
	}
	for v, want := range map[string]time.Duration{"0": 0, "0s": 0, "1h": time.Hour, "720h": 720 * time.Hour} {
		c, err := Load("api", nil, env(map[string]string{"RETENTION": v}), 2, io.Discard)
		if err != nil || c.Retention != want {
			t.Errorf("RETENTION=%s: %v, %v; want %s", v, c, err, want)
		}
	}
	for _, v := range []string{"59m", "-1h", "90d", "forever"} {
		_, err := Load("api", nil, env(map[string]string{"RETENTION": v}), 2, io.Discard)
		var cerr *Error
		if !errors.As(err, &cerr) || cerr.Var != "RETENTION" {
			t.Errorf("RETENTION=%s: got %v", v, err)
		}
	}
	for v, want := range map[string]int64{"0": 0, "1024": 1024, "512MiB": 512 << 20, "2 GiB": 2 << 30, "1TiB": 1 << 40, "3KiB": 3 << 10} {
		if got, err := ParseBytes(v); err != nil || got != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", v, got, err, want)
		}
	}
	for _, v := range []string{"", "-1", "1.5GiB", "2GB", "GiB", "99999999999TiB"} {
		if got, err := ParseBytes(v); err == nil {
			t.Errorf("ParseBytes(%q) = %d, want an error", v, got)
		}
	}
}
