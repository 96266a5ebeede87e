// Package config reads the process configuration of cmd/api and cmd/dispatcher from the
// environment and from flags of the same name in kebab case (HTTP_ADDR ⇔ -http-addr).
//
// Flags win over the environment; the environment wins over defaults. Validation errors name
// the variable, so a misconfigured binary stops with one clear line (exit status 2).
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/dispatch24/dispatch24/internal/secret"
)

// Config is the effective configuration of one process. Every field documents its variable
// and its default.
type Config struct {
	// HTTPAddr (HTTP_ADDR, default 127.0.0.1:8080 for the api, 127.0.0.1:8081 for the
	// dispatcher, so both run on one machine) is the listen address: the API's, or the
	// dispatcher's health and metrics; ":0" picks a free port.
	HTTPAddr string
	// DataDir (DATA_DIR, default ./data) holds embedded mode's files.
	DataDir string
	// DatabaseURL (DATABASE_URL, default unset → embedded SQLite) selects PostgreSQL when set.
	DatabaseURL string
	// NATSURL (NATS_URL, default unset → embedded NATS) lists external NATS servers, comma separated.
	NATSURL string
	// DispatchInProcess (DISPATCH_IN_PROCESS, default true when NATS is embedded) runs
	// delivery workers inside cmd/api.
	DispatchInProcess bool
	// PublicURL (PUBLIC_URL, default http://<HTTP_ADDR>) is the base of links this service returns.
	PublicURL string
	// SurveyAppURL (SURVEY_APP_URL, default <PUBLIC_URL>/survey) is the survey app's base URL.
	SurveyAppURL string
	// TokenSecret (TOKEN_SECRET) is the HMAC key of our own tokens. Embedded mode generates one
	// and keeps it in DATA_DIR; the api requires it with PostgreSQL. The dispatcher never signs
	// or verifies our tokens and does not require it (a given one is still checked).
	TokenSecret string
	// SecretsKey (SECRETS_KEY) seals the secrets kept in the store (see internal/secret): 32
	// bytes, base64 or hex. Embedded mode generates one and keeps it in DATA_DIR; with
	// PostgreSQL both binaries require it. SecretsKeyPrevious (SECRETS_KEY_PREVIOUS, comma
	// separated, default none) only open what older keys sealed, during a rotation.
	SecretsKey         []byte
	SecretsKeyPrevious [][]byte
	// TokenIssuer (TOKEN_ISSUER, default intake24) is the iss of every JWT we sign.
	TokenIssuer string
	// AccessTokenTTL (ACCESS_TOKEN_TTL, default 10m).
	AccessTokenTTL time.Duration
	// RefreshTokenTTL (REFRESH_TOKEN_TTL, default 720h).
	RefreshTokenTTL time.Duration
	// AdminEmail (ADMIN_EMAIL, default admin@localhost) is the first admin's e-mail.
	AdminEmail string
	// AdminPassword (ADMIN_PASSWORD, default random, printed once) is the first admin's password.
	AdminPassword string
	// AdminGiven names ADMIN_EMAIL and ADMIN_PASSWORD when they were set rather than defaulted,
	// so the api can say it ignores them once a global account exists.
	AdminGiven []string
	// WebhookTimeout (WEBHOOK_TIMEOUT, default 15s) bounds one delivery attempt.
	WebhookTimeout time.Duration
	// RetrySchedule (WEBHOOK_RETRY_SCHEDULE, default 0s,5s,5m,30m,2h,5h,10h,14h,20h,24h) is the
	// delay before each attempt; its length is the attempt limit.
	RetrySchedule []time.Duration
	// AllowNets (WEBHOOK_ALLOW_NETS, default empty) are CIDRs exempt from the private-address block.
	AllowNets []*net.IPNet
	// DisableAfterFailures (WEBHOOK_DISABLE_AFTER_FAILURES, default 100) and DisableAfter
	// (WEBHOOK_DISABLE_AFTER, default 24h): an endpoint is disabled after that many consecutive
	// failures spanning at least that long. 0 failures turns auto-disabling off.
	DisableAfterFailures int
	DisableAfter         time.Duration
	// Concurrency (DISPATCH_CONCURRENCY, default 64 per core) is the number of in-flight
	// deliveries per dispatcher process.
	Concurrency int
	// EndpointConcurrency (DISPATCH_ENDPOINT_CONCURRENCY, default 32) caps in-flight deliveries
	// to one endpoint per process, so one slow receiver cannot take every worker.
	EndpointConcurrency int
	// LogFormat (LOG_FORMAT, default text) is text or json; LogLevel (LOG_LEVEL, default info).
	LogFormat string
	LogLevel  slog.Level
	// ShutdownTimeout (SHUTDOWN_TIMEOUT, default 10s) bounds graceful shutdown.
	ShutdownTimeout time.Duration
	// TrustedProxies (TRUSTED_PROXIES, default empty) are the CIDRs of reverse proxies whose
	// X-Forwarded-For the api believes: only a request whose TCP peer is inside them has its
	// client address taken from that header (for the sign-in rate limit and logs).
	TrustedProxies []netip.Prefix
	// Retention (RETENTION, default 2160h, 90 days; 0 keeps everything) is how long events,
	// deliveries and attempt logs are kept after their last activity (internal/retention);
	// pending deliveries are kept however old. It is also the events stream's MaxAge. At
	// least 1h when set: the stream drops events that no dispatcher took within it.
	Retention time.Duration
	// StreamMaxBytes (NATS_STREAM_MAX_BYTES, default 2GiB; 0: no limit) and StreamMaxMsgs
	// (NATS_STREAM_MAX_MSGS, default 1000000; 0: no limit) bound the events stream. A full
	// stream refuses new events, which stay in the outbox until dispatchers drain it.
	StreamMaxBytes int64
	StreamMaxMsgs  int64

	// Embedded reports whether NATS runs in-process (NATS_URL unset).
	Embedded bool

	// derivedURLs: PUBLIC_URL and SURVEY_APP_URL were derived from HTTP_ADDR.
	publicDerived, surveyAppDerived bool
}

// Bound records the address the API actually listens on (HTTP_ADDR may name port 0): URLs
// derived from HTTP_ADDR then name the real port.
func (c *Config) Bound(addr string) {
	if c.publicDerived {
		c.PublicURL = "http://" + addr
	}
	if c.surveyAppDerived {
		c.SurveyAppURL = c.PublicURL + "/survey"
	}
}

// DefaultRetrySchedule is the contract's WEBHOOK_RETRY_SCHEDULE default.
const DefaultRetrySchedule = "0s,5s,5m,30m,2h,5h,10h,14h,20h,24h"

// Var describes one configuration variable.
type Var struct {
	Name    string // environment name, e.g. HTTP_ADDR
	Default string // default as text ("" when computed or unset)
	Secret  bool   // redacted in logs
	Usage   string
}

// Vars lists every variable the binaries read, in the order they are documented.
var Vars = []Var{
	{"HTTP_ADDR", "127.0.0.1:8080", false, "API listen address (:0 picks a free port)"},
	{"DATA_DIR", "./data", false, "embedded mode's files"},
	{"DATABASE_URL", "", true, "postgres://… selects PostgreSQL; unset → embedded SQLite"},
	{"NATS_URL", "", true, "external NATS servers, comma separated; unset → embedded NATS"},
	{"DISPATCH_IN_PROCESS", "", false, "run delivery workers inside cmd/api (default true when NATS is embedded)"},
	{"PUBLIC_URL", "", false, "base URL used in links (default http://<HTTP_ADDR>)"},
	{"SURVEY_APP_URL", "", false, "survey app base URL (default <PUBLIC_URL>/survey)"},
	{"TOKEN_SECRET", "", true, "HMAC key of access and refresh tokens (the api requires it with DATABASE_URL)"},
	{"SECRETS_KEY", "", true, "seals webhook secrets and survey jwtSecrets in the store: 32 random bytes, base64 or hex (openssl rand -base64 32); required with DATABASE_URL"},
	{"SECRETS_KEY_PREVIOUS", "", true, "keys that only open secrets sealed before a rotation, comma separated"},
	{"TOKEN_ISSUER", "intake24", false, "iss of every JWT this service signs"},
	{"ACCESS_TOKEN_TTL", "10m", false, "access token lifetime"},
	{"REFRESH_TOKEN_TTL", "720h", false, "refresh token lifetime"},
	{"ADMIN_EMAIL", "admin@localhost", false, "first admin's e-mail"},
	{"ADMIN_PASSWORD", "", true, "first admin's password (random and printed once when unset)"},
	{"WEBHOOK_TIMEOUT", "15s", false, "whole request timeout of one delivery attempt"},
	{"WEBHOOK_RETRY_SCHEDULE", DefaultRetrySchedule, false, "delay before each attempt"},
	{"WEBHOOK_ALLOW_NETS", "", false, "CIDRs exempt from the private-address block"},
	{"WEBHOOK_DISABLE_AFTER_FAILURES", "100", false, "consecutive failures that disable an endpoint (0 = never)"},
	{"WEBHOOK_DISABLE_AFTER", "24h", false, "the failures must span at least this long"},
	{"DISPATCH_CONCURRENCY", "", false, "in-flight deliveries per dispatcher process (default 64 per core)"},
	{"DISPATCH_ENDPOINT_CONCURRENCY", "32", false, "in-flight deliveries to one endpoint per process"},
	{"LOG_FORMAT", "text", false, "text or json"},
	{"LOG_LEVEL", "info", false, "debug, info, warn or error"},
	{"SHUTDOWN_TIMEOUT", "10s", false, "graceful shutdown bound"},
	{"TRUSTED_PROXIES", "", false, "CIDRs of reverse proxies whose X-Forwarded-For gives the client address"},
	{"RETENTION", DefaultRetention, false, "keep events, deliveries and attempt logs this long after their last activity (0 = forever; at least 1h)"},
	{"NATS_STREAM_MAX_BYTES", "2GiB", false, "size limit of the events stream (bytes, or with KiB, MiB, GiB, TiB; 0 = none)"},
	{"NATS_STREAM_MAX_MSGS", "1000000", false, "message limit of the events stream (0 = none)"},
}

// DefaultRetention is the contract's RETENTION default (90 days).
const DefaultRetention = "2160h"

// MinRetention is the shortest RETENTION other than 0.
const MinRetention = time.Hour

// programVars are the variables whose default or meaning differ for one program. The
// dispatcher has no embedded mode (the api runs the workers itself there), so it requires the
// external services, and its HTTP_ADDR serves only health and metrics, on a port of its own.
var programVars = map[string]map[string]Var{
	"dispatcher": {
		"HTTP_ADDR":    {"HTTP_ADDR", "127.0.0.1:8081", false, "health and metrics listen address: /healthz, /readyz, /metrics (:0 picks a free port)"},
		"DATABASE_URL": {"DATABASE_URL", "", true, "required: postgres://… of the api's PostgreSQL store"},
		"NATS_URL":     {"NATS_URL", "", true, "required: the api's NATS servers (2.10+), comma separated"},
		"SECRETS_KEY":  {"SECRETS_KEY", "", true, "required: the api's SECRETS_KEY (opens webhook secrets and survey jwtSecrets)"},
	},
}

// VarsFor lists the variables as program ("api", "dispatcher", …) reads them: Vars with that
// program's own defaults and descriptions.
func VarsFor(program string) []Var {
	own := programVars[program]
	out := make([]Var, len(Vars))
	for i, v := range Vars {
		if o, ok := own[v.Name]; ok {
			v = o
		}
		out[i] = v
	}
	return out
}

// flagName turns HTTP_ADDR into http-addr.
func flagName(env string) string { return strings.ReplaceAll(strings.ToLower(env), "_", "-") }

// Error is a configuration error naming its variable.
type Error struct {
	// Var is the environment variable's name ("flags" for a command line that does not parse).
	Var string
	// Flag is the flag ("-http-addr") when the bad value came from the command line, so the
	// message names what the user typed; empty when it came from the environment or a default.
	Flag string
	Msg  string
}

func (e *Error) Error() string {
	if e.Flag != "" {
		return fmt.Sprintf("invalid configuration: flag %s: %s", e.Flag, e.Msg)
	}
	return fmt.Sprintf("invalid configuration: %s: %s", e.Var, e.Msg)
}

// ErrHelp is returned when -h or -help was asked for; usage has been printed.
var ErrHelp = flag.ErrHelp

// Load reads the configuration of program name ("api" or "dispatcher") from args (without the
// program name) and getenv. numCPU sizes the default concurrency. Usage and flag errors go to
// output.
func Load(name string, args []string, getenv func(string) string, numCPU int, output io.Writer) (*Config, error) {
	return LoadCommand(name, args, getenv, numCPU, output, nil)
}

// LoadCommand is Load for a command with flags of its own (such as "reset-password"'s
// --email): define adds them to the flag set before args are parsed, so they mix freely with
// the variables' flags. Which variables are required depends on name (see requires).
func LoadCommand(name string, args []string, getenv func(string) string, numCPU int, output io.Writer, define func(*flag.FlagSet)) (*Config, error) {
	raw, given, fromFlags, err := parse(name, args, getenv, output, define)
	if err != nil {
		return nil, err
	}
	c, err := build(name, raw, numCPU)
	var ce *Error
	if errors.As(err, &ce) && fromFlags[ce.Var] {
		ce.Flag = "-" + flagName(ce.Var)
	}
	if err != nil {
		return nil, err
	}
	for _, v := range []string{"ADMIN_EMAIL", "ADMIN_PASSWORD"} {
		if given[v] {
			c.AdminGiven = append(c.AdminGiven, v)
		}
	}
	return c, nil
}

// parse returns each variable's value (its default when unset), which were given, and which
// came from a flag.
func parse(name string, args []string, getenv func(string) string, output io.Writer, define func(*flag.FlagSet)) (raw map[string]string, given, fromFlags map[string]bool, err error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(output)
	if define != nil {
		define(fs)
	}
	vars := VarsFor(name)
	vals := make(map[string]*string, len(vars))
	for _, v := range vars {
		vals[v.Name] = fs.String(flagName(v.Name), "", v.Usage+" (env "+v.Name+")")
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, nil, nil, ErrHelp
		}
		return nil, nil, nil, &Error{Var: "flags", Msg: err.Error()}
	}
	if fs.NArg() > 0 {
		return nil, nil, nil, &Error{Var: "flags", Msg: fmt.Sprintf("unexpected argument %q", fs.Arg(0))}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	raw = make(map[string]string, len(vars))
	given = make(map[string]bool, len(vars))
	fromFlags = map[string]bool{}
	for _, v := range vars {
		val := getenv(v.Name)
		if set[flagName(v.Name)] {
			val = *vals[v.Name]
			fromFlags[v.Name] = true
		}
		val = strings.TrimSpace(val)
		given[v.Name] = val != ""
		if val == "" {
			val = v.Default
		}
		raw[v.Name] = val
	}
	return raw, given, fromFlags, nil
}

// needsTokenSecret reports whether program name signs or verifies our own tokens with
// PostgreSQL: only the api. The dispatcher only delivers webhooks, and "reset-password" (the
// api's operator command) only writes a password hash.
func needsTokenSecret(name string) bool { return name == "api" }

// needsSecretsKey reports whether program name reads the secrets sealed in a PostgreSQL store:
// the api and the dispatcher. "reset-password" touches no sealed value, so it works with the
// store's URL alone.
func needsSecretsKey(name string) bool { return name == "api" || name == "dispatcher" }

func build(name string, raw map[string]string, numCPU int) (*Config, error) {
	c := &Config{
		HTTPAddr:      raw["HTTP_ADDR"],
		DataDir:       raw["DATA_DIR"],
		DatabaseURL:   raw["DATABASE_URL"],
		NATSURL:       raw["NATS_URL"],
		TokenSecret:   raw["TOKEN_SECRET"],
		TokenIssuer:   raw["TOKEN_ISSUER"],
		AdminEmail:    raw["ADMIN_EMAIL"],
		AdminPassword: raw["ADMIN_PASSWORD"],
		LogFormat:     raw["LOG_FORMAT"],
	}
	c.Embedded = c.NATSURL == ""
	var err error
	fail := func(name, msg string) error { return &Error{Var: name, Msg: msg} }

	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		return nil, fail("HTTP_ADDR", "want host:port, e.g. 127.0.0.1:8080")
	}
	if c.DataDir == "" {
		return nil, fail("DATA_DIR", "must not be empty")
	}
	if c.DatabaseURL != "" {
		u, err := url.Parse(c.DatabaseURL)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			return nil, fail("DATABASE_URL", "want postgres://user@host:port/db")
		}
	}
	if c.NATSURL != "" {
		for _, s := range strings.Split(c.NATSURL, ",") {
			u, err := url.Parse(strings.TrimSpace(s))
			if err != nil || u.Host == "" || (u.Scheme != "nats" && u.Scheme != "tls" && u.Scheme != "ws" && u.Scheme != "wss") {
				return nil, fail("NATS_URL", "want nats://host:port[,nats://host:port…]")
			}
		}
	}
	if v := raw["DISPATCH_IN_PROCESS"]; v == "" {
		c.DispatchInProcess = c.Embedded
	} else if c.DispatchInProcess, err = strconv.ParseBool(v); err != nil {
		return nil, fail("DISPATCH_IN_PROCESS", "want true or false")
	}
	c.PublicURL = strings.TrimRight(raw["PUBLIC_URL"], "/")
	if c.PublicURL == "" {
		c.PublicURL, c.publicDerived = "http://"+c.HTTPAddr, true
	} else if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fail("PUBLIC_URL", "want an absolute http(s) URL")
	}
	c.SurveyAppURL = strings.TrimRight(raw["SURVEY_APP_URL"], "/")
	if c.SurveyAppURL == "" {
		c.SurveyAppURL, c.surveyAppDerived = c.PublicURL+"/survey", true
	} else if u, err := url.Parse(c.SurveyAppURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fail("SURVEY_APP_URL", "want an absolute http(s) URL")
	}
	if c.TokenSecret == "" && !c.embeddedStore() && needsTokenSecret(name) {
		return nil, fail("TOKEN_SECRET", "required when DATABASE_URL is set (32+ random characters)")
	}
	if c.TokenSecret != "" && len(c.TokenSecret) < 32 {
		return nil, fail("TOKEN_SECRET", "must be at least 32 characters")
	}
	if v := raw["SECRETS_KEY"]; v != "" {
		if c.SecretsKey, err = secret.ParseKey(v); err != nil {
			return nil, fail("SECRETS_KEY", err.Error())
		}
	} else if !c.embeddedStore() && needsSecretsKey(name) {
		return nil, fail("SECRETS_KEY", "required when DATABASE_URL is set (32 random bytes, base64: openssl rand -base64 32)")
	}
	if c.SecretsKeyPrevious, err = secret.ParseKeys(raw["SECRETS_KEY_PREVIOUS"]); err != nil {
		return nil, fail("SECRETS_KEY_PREVIOUS", err.Error())
	}
	if c.TokenIssuer == "" {
		return nil, fail("TOKEN_ISSUER", "must not be empty")
	}
	if c.AccessTokenTTL, err = positiveDuration(raw["ACCESS_TOKEN_TTL"]); err != nil {
		return nil, fail("ACCESS_TOKEN_TTL", err.Error())
	}
	if c.RefreshTokenTTL, err = positiveDuration(raw["REFRESH_TOKEN_TTL"]); err != nil {
		return nil, fail("REFRESH_TOKEN_TTL", err.Error())
	}
	if !strings.Contains(c.AdminEmail, "@") {
		return nil, fail("ADMIN_EMAIL", "want an e-mail address")
	}
	if c.AdminPassword != "" && len(c.AdminPassword) < 8 {
		return nil, fail("ADMIN_PASSWORD", "must be at least 8 characters")
	}
	if c.WebhookTimeout, err = positiveDuration(raw["WEBHOOK_TIMEOUT"]); err != nil {
		return nil, fail("WEBHOOK_TIMEOUT", err.Error())
	}
	if c.RetrySchedule, err = ParseSchedule(raw["WEBHOOK_RETRY_SCHEDULE"]); err != nil {
		return nil, fail("WEBHOOK_RETRY_SCHEDULE", err.Error())
	}
	if c.AllowNets, err = ParseNets(raw["WEBHOOK_ALLOW_NETS"]); err != nil {
		return nil, fail("WEBHOOK_ALLOW_NETS", err.Error())
	}
	if c.DisableAfterFailures, err = strconv.Atoi(raw["WEBHOOK_DISABLE_AFTER_FAILURES"]); err != nil || c.DisableAfterFailures < 0 {
		return nil, fail("WEBHOOK_DISABLE_AFTER_FAILURES", "want a whole number ≥ 0")
	}
	if c.DisableAfter, err = time.ParseDuration(raw["WEBHOOK_DISABLE_AFTER"]); err != nil || c.DisableAfter < 0 {
		return nil, fail("WEBHOOK_DISABLE_AFTER", "want a duration ≥ 0 such as 24h")
	}
	if v := raw["DISPATCH_CONCURRENCY"]; v == "" {
		c.Concurrency = 64 * max(numCPU, 1)
	} else if c.Concurrency, err = strconv.Atoi(v); err != nil || c.Concurrency < 1 || c.Concurrency > 100000 {
		return nil, fail("DISPATCH_CONCURRENCY", "want a whole number from 1 to 100000")
	}
	if c.EndpointConcurrency, err = strconv.Atoi(raw["DISPATCH_ENDPOINT_CONCURRENCY"]); err != nil || c.EndpointConcurrency < 1 {
		return nil, fail("DISPATCH_ENDPOINT_CONCURRENCY", "want a whole number ≥ 1")
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		return nil, fail("LOG_FORMAT", "want text or json")
	}
	if err := c.LogLevel.UnmarshalText([]byte(raw["LOG_LEVEL"])); err != nil {
		return nil, fail("LOG_LEVEL", "want debug, info, warn or error")
	}
	if c.ShutdownTimeout, err = positiveDuration(raw["SHUTDOWN_TIMEOUT"]); err != nil {
		return nil, fail("SHUTDOWN_TIMEOUT", err.Error())
	}
	if c.TrustedProxies, err = ParsePrefixes(raw["TRUSTED_PROXIES"]); err != nil {
		return nil, fail("TRUSTED_PROXIES", err.Error())
	}
	if c.Retention, err = time.ParseDuration(raw["RETENTION"]); err != nil || c.Retention < 0 || (c.Retention > 0 && c.Retention < MinRetention) {
		return nil, fail("RETENTION", "want 0 (keep everything) or a duration of at least 1h, such as 2160h (90 days)")
	}
	if c.StreamMaxBytes, err = ParseBytes(raw["NATS_STREAM_MAX_BYTES"]); err != nil {
		return nil, fail("NATS_STREAM_MAX_BYTES", err.Error())
	}
	if c.StreamMaxMsgs, err = strconv.ParseInt(raw["NATS_STREAM_MAX_MSGS"], 10, 64); err != nil || c.StreamMaxMsgs < 0 {
		return nil, fail("NATS_STREAM_MAX_MSGS", "want a whole number ≥ 0 (0: no limit)")
	}
	return c, nil
}

func (c *Config) embeddedStore() bool { return c.DatabaseURL == "" }

// EmbeddedStore reports whether the store is the embedded SQLite database.
func (c *Config) EmbeddedStore() bool { return c.embeddedStore() }

// SQLitePath is the embedded database file.
func (c *Config) SQLitePath() string { return filepath.Join(c.DataDir, "dispatch24.db") }

// NATSStoreDir is the embedded NATS server's JetStream directory.
func (c *Config) NATSStoreDir() string { return filepath.Join(c.DataDir, "nats") }

func positiveDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, errors.New("want a positive duration such as 15s or 10m")
	}
	return d, nil
}

// ParseSchedule parses a comma-separated list of durations (at least one, each ≥ 0, at most 1000).
func ParseSchedule(s string) ([]time.Duration, error) {
	parts := strings.Split(s, ",")
	if len(parts) > 1000 {
		return nil, errors.New("at most 1000 attempts")
	}
	out := make([]time.Duration, 0, len(parts))
	for _, p := range parts {
		d, err := time.ParseDuration(strings.TrimSpace(p))
		if err != nil || d < 0 {
			return nil, fmt.Errorf("want durations separated by commas, e.g. %s", DefaultRetrySchedule)
		}
		out = append(out, d)
	}
	return out, nil
}

// ParseBytes parses a size: a whole number of bytes, optionally followed by KiB, MiB, GiB or
// TiB (powers of 1024). 0 means no limit.
func ParseBytes(s string) (int64, error) {
	bad := errors.New("want a size such as 2GiB, 512MiB or a number of bytes (0: no limit)")
	num, unit := s, int64(1)
	for suffix, mult := range map[string]int64{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40} {
		if n, ok := strings.CutSuffix(s, suffix); ok {
			num, unit = strings.TrimSpace(n), mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/unit {
		return 0, bad
	}
	return n * unit, nil
}

// ParseNets parses a comma-separated list of CIDRs; a bare address counts as a single host.
func ParseNets(s string) ([]*net.IPNet, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []*net.IPNet
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if !strings.Contains(p, "/") {
			ip := net.ParseIP(p)
			if ip == nil {
				return nil, fmt.Errorf("%q is not a CIDR", p)
			}
			bits := 128
			if ip.To4() != nil {
				ip, bits = ip.To4(), 32
			}
			out = append(out, &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)})
			continue
		}
		_, n, err := net.ParseCIDR(p)
		if err != nil {
			return nil, fmt.Errorf("%q is not a CIDR", p)
		}
		out = append(out, n)
	}
	return out, nil
}

// ParsePrefixes parses a comma-separated list of CIDRs (a bare address is a single host)
// into netip prefixes with their host bits cleared. IPv4-mapped IPv6 forms are read as IPv4.
func ParsePrefixes(s string) ([]netip.Prefix, error) {
	nets, err := ParseNets(s)
	if err != nil {
		return nil, err
	}
	out := make([]netip.Prefix, 0, len(nets))
	for _, n := range nets {
		addr, _ := netip.AddrFromSlice(n.IP)
		ones, bits := n.Mask.Size()
		if addr.Is4In6() && bits == 128 && ones >= 96 {
			addr, ones = addr.Unmap(), ones-96
		} else if bits == 32 {
			addr = addr.Unmap()
		}
		p, err := addr.Prefix(ones)
		if err != nil {
			return nil, fmt.Errorf("%s is not a CIDR", n)
		}
		out = append(out, p)
	}
	return out, nil
}

// LogValue logs the effective configuration with secrets redacted.
func (c *Config) LogValue() slog.Value {
	redact := func(s string) string {
		if s == "" {
			return ""
		}
		return "[redacted]"
	}
	nets := make([]string, len(c.AllowNets))
	for i, n := range c.AllowNets {
		nets[i] = n.String()
	}
	sched := make([]string, len(c.RetrySchedule))
	for i, d := range c.RetrySchedule {
		sched[i] = d.String()
	}
	return slog.GroupValue(
		slog.String("http_addr", c.HTTPAddr),
		slog.String("data_dir", c.DataDir),
		slog.String("database_url", RedactURL(c.DatabaseURL)),
		slog.String("nats_url", RedactURL(c.NATSURL)),
		slog.Bool("dispatch_in_process", c.DispatchInProcess),
		slog.String("public_url", c.PublicURL),
		slog.String("survey_app_url", c.SurveyAppURL),
		slog.String("token_secret", redact(c.TokenSecret)),
		slog.String("secrets_key", redact(string(c.SecretsKey))),
		slog.Int("secrets_key_previous", len(c.SecretsKeyPrevious)),
		slog.String("token_issuer", c.TokenIssuer),
		slog.Duration("access_token_ttl", c.AccessTokenTTL),
		slog.Duration("refresh_token_ttl", c.RefreshTokenTTL),
		slog.String("admin_email", c.AdminEmail),
		slog.String("admin_password", redact(c.AdminPassword)),
		slog.Duration("webhook_timeout", c.WebhookTimeout),
		slog.String("webhook_retry_schedule", strings.Join(sched, ",")),
		slog.String("webhook_allow_nets", strings.Join(nets, ",")),
		slog.Int("webhook_disable_after_failures", c.DisableAfterFailures),
		slog.Duration("webhook_disable_after", c.DisableAfter),
		slog.Int("dispatch_concurrency", c.Concurrency),
		slog.Int("dispatch_endpoint_concurrency", c.EndpointConcurrency),
		slog.String("log_format", c.LogFormat),
		slog.String("log_level", c.LogLevel.String()),
		slog.String("trusted_proxies", joinPrefixes(c.TrustedProxies)),
		slog.Duration("retention", c.Retention),
		slog.Int64("nats_stream_max_bytes", c.StreamMaxBytes),
		slog.Int64("nats_stream_max_msgs", c.StreamMaxMsgs),
	)
}

func joinPrefixes(ps []netip.Prefix) string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return strings.Join(out, ",")
}

// RedactURL hides the credentials in connection URLs (each of a comma-separated list):
// passwords, NATS tokens given as the user part, and password or token query parameters.
func RedactURL(s string) string {
	if s == "" {
		return ""
	}
	parts := strings.Split(s, ",")
	for i, p := range parts {
		u, err := url.Parse(strings.TrimSpace(p))
		if err != nil {
			parts[i] = "[unparseable]"
			continue
		}
		if u.User != nil {
			switch _, hasPassword := u.User.Password(); {
			case hasPassword:
				u.User = url.UserPassword(u.User.Username(), "redacted")
			case u.Scheme != "postgres" && u.Scheme != "postgresql":
				// nats://<token>@host: the user part alone is the credential.
				u.User = url.User("redacted")
			}
		}
		q := u.Query()
		for k := range q {
			if strings.Contains(strings.ToLower(k), "password") || strings.Contains(strings.ToLower(k), "token") {
				q.Set(k, "[redacted]")
			}
		}
		u.RawQuery = q.Encode()
		parts[i] = u.String()
	}
	return strings.Join(parts, ",")
}

// NewLogger builds the process logger from LOG_FORMAT and LOG_LEVEL.
func (c *Config) NewLogger(w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.LogLevel}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
