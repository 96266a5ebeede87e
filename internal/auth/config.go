package auth

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dispatch24/dispatch24/internal/password"
)

// Config configures a Service. Zero fields take the defaults documented on each.
type Config struct {
	// Secret is the HMAC key of access and refresh tokens (TOKEN_SECRET); required, at least
	// 32 bytes.
	Secret []byte
	// Issuer is the iss of every token (TOKEN_ISSUER, default "intake24").
	Issuer string
	// AccessTTL is the access token lifetime (ACCESS_TOKEN_TTL, default 10m).
	AccessTTL time.Duration
	// RefreshTTL is the refresh token lifetime (REFRESH_TOKEN_TTL, default 720h).
	RefreshTTL time.Duration
	// Leeway is the clock skew tolerated on exp, nbf and iat between replicas (default 10s).
	Leeway time.Duration

	// PasswordParams are the argon2id costs of new password hashes (default
	// password.DefaultParams). Tests lower them; the dummy hash of unknown accounts uses the
	// same costs so both failure paths take the same time.
	PasswordParams password.Params
	// MinPasswordLen is the shortest password accepted for global accounts (default 8).
	MinPasswordLen int

	// MaxFailures is the number of failed sign-ins per account key and client address within
	// FailureWindow after which further attempts get 429 (default 5).
	MaxFailures int
	// MaxAddressFailures is the number of failed sign-ins per client address, across all
	// accounts, within FailureWindow after which further attempts from it get 429 (default
	// 100). Behind a proxy, set TRUSTED_PROXIES, or every client shares one address.
	MaxAddressFailures int
	// FailureWindow is the rate limit's window (default 15m).
	FailureWindow time.Duration

	// Hasher bounds the password hashes and checks running at once (default: a Hasher of
	// its own with password.HasherConfig's defaults). One process shares one Hasher among
	// every service that hashes passwords.
	Hasher *password.Hasher

	// Respondents reads and re-hashes the respondents that sign in: their owner's API,
	// internal/survey's *survey.Store (required).
	Respondents Respondents

	// PATMaxLifetime bounds a personal access token's expiresAt (default 0: two calendar
	// years ahead).
	PATMaxLifetime time.Duration
	// PATTouchInterval is how stale last_used_at may get before a use writes it again
	// (default 1m).
	PATTouchInterval time.Duration

	// PruneInterval is how often Run deletes expired refresh tokens and old sign-in failures
	// (default 5m).
	PruneInterval time.Duration

	// Metrics counts refused sign-ins (default: series on a registry of their own, which
	// nothing serves). The binaries pass NewMetrics(metrics.Registry).
	Metrics *Metrics

	// NowFunc is the clock (default time.Now); tests move it.
	NowFunc func() time.Time
}

// The defaults of Config.
const (
	DefaultIssuer           = "intake24"
	DefaultAccessTTL        = 10 * time.Minute
	DefaultRefreshTTL       = 720 * time.Hour
	DefaultLeeway           = 10 * time.Second
	DefaultMinPasswordLen   = 8
	DefaultMaxFailures      = 5
	DefaultMaxAddrFailures  = 100
	DefaultFailureWindow    = 15 * time.Minute
	DefaultPATTouchInterval = time.Minute
	DefaultPruneInterval    = 5 * time.Minute
)

// WithDefaults returns the config with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Issuer == "" {
		c.Issuer = DefaultIssuer
	}
	if c.AccessTTL == 0 {
		c.AccessTTL = DefaultAccessTTL
	}
	if c.RefreshTTL == 0 {
		c.RefreshTTL = DefaultRefreshTTL
	}
	if c.Leeway == 0 {
		c.Leeway = DefaultLeeway
	}
	if c.PasswordParams == (password.Params{}) {
		c.PasswordParams = password.DefaultParams
	}
	if c.MinPasswordLen == 0 {
		c.MinPasswordLen = DefaultMinPasswordLen
	}
	if c.MaxFailures == 0 {
		c.MaxFailures = DefaultMaxFailures
	}
	if c.MaxAddressFailures == 0 {
		c.MaxAddressFailures = DefaultMaxAddrFailures
	}
	if c.Hasher == nil {
		c.Hasher = password.NewHasher(password.HasherConfig{})
	}
	if c.FailureWindow == 0 {
		c.FailureWindow = DefaultFailureWindow
	}
	if c.PATTouchInterval == 0 {
		c.PATTouchInterval = DefaultPATTouchInterval
	}
	if c.PruneInterval == 0 {
		c.PruneInterval = DefaultPruneInterval
	}
	if c.Metrics == nil {
		c.Metrics = NewMetrics(prometheus.NewRegistry())
	}
	if c.NowFunc == nil {
		c.NowFunc = time.Now
	}
	return c
}

func (c Config) validate() error {
	switch {
	case c.Respondents == nil:
		return errors.New("auth: Config.Respondents is required")
	case len(c.Secret) < 32:
		return errors.New("auth: the token secret must be at least 32 bytes")
	case c.AccessTTL < 0 || c.RefreshTTL < 0 || c.Leeway < 0:
		return errors.New("auth: token lifetimes and leeway must be positive")
	case c.AccessTTL > c.RefreshTTL:
		return fmt.Errorf("auth: the access token lifetime (%s) exceeds the refresh token lifetime (%s)", c.AccessTTL, c.RefreshTTL)
	case c.MaxFailures < 1 || c.MaxAddressFailures < 1 || c.FailureWindow < time.Second:
		return errors.New("auth: the sign-in rate limit needs at least 1 failure and a window of at least 1s")
	case c.MinPasswordLen < 1:
		return errors.New("auth: MinPasswordLen must be positive")
	case c.PasswordParams.Memory < 8 || c.PasswordParams.Time < 1 || c.PasswordParams.Threads < 1 ||
		c.PasswordParams.KeyLen < 16 || c.PasswordParams.SaltLen < 8:
		return errors.New("auth: invalid argon2id parameters")
	case c.PATMaxLifetime < 0 || c.PATTouchInterval < 0 || c.PruneInterval <= 0:
		return errors.New("auth: invalid personal access token or prune settings")
	}
	return nil
}
