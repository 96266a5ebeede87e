// Package app opens what both binaries share: the store, the NATS connection (embedded or
// external) with the JetStream topology, metrics, the token secret and the secrets keyring. The binaries' main
// packages wire the services on top.
package app

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/dispatch24/dispatch24/internal/config"
	"github.com/dispatch24/dispatch24/internal/delivery"
	"github.com/dispatch24/dispatch24/internal/embeddednats"
	"github.com/dispatch24/dispatch24/internal/httpapi"
	"github.com/dispatch24/dispatch24/internal/outbox"
	"github.com/dispatch24/dispatch24/internal/secret"
	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/postgres"
	"github.com/dispatch24/dispatch24/internal/store/sqlite"
	"github.com/dispatch24/dispatch24/internal/telemetry"
	"github.com/dispatch24/dispatch24/pkg/events"
)

// Version is the build's version, set with -ldflags "-X …/internal/app.Version=…".
var Version = "dev"

// Env is an opened environment.
type Env struct {
	Config  *config.Config
	Logger  *slog.Logger
	Metrics *telemetry.Metrics

	DB   *store.DB
	NATS *embeddednats.Server // nil with external NATS
	// NC is the NATS connection. With external NATS it may not be connected yet: it retries
	// in the background forever.
	NC *nats.Conn
	JS jetstream.JetStream
	// Link keeps the NATS side usable (server version, stream and consumer after every
	// reconnect); run Link.Run as a component. Link.Consumer waits for the consumer.
	Link *NATSLink

	// TokenSecret is the HMAC key of our own tokens; nil in a dispatcher started without one.
	TokenSecret []byte
	// Secrets seals and opens the secrets kept in the store (SECRETS_KEY; see internal/secret).
	Secrets *secret.Keyring
}

// Open opens the store and NATS. NATS being down is not an error: the connection and the
// JetStream topology come up in the background (see NATSLink). On error everything opened so
// far is closed.
func Open(ctx context.Context, cfg *config.Config, logger *slog.Logger, metrics *telemetry.Metrics) (env *Env, err error) {
	env = &Env{Config: cfg, Logger: logger, Metrics: metrics}
	defer func() {
		if err != nil {
			env.Close()
		}
	}()

	start := time.Now()
	if cfg.EmbeddedStore() {
		env.DB, err = sqlite.Open(ctx, cfg.SQLitePath())
	} else {
		env.DB, err = postgres.Open(ctx, cfg.DatabaseURL)
	}
	if err != nil {
		return env, err
	}
	logger.Info("store ready", "database", env.DB.Name(), "took", time.Since(start).Round(time.Millisecond))

	if env.TokenSecret, err = tokenSecret(cfg); err != nil {
		return env, err
	}
	if env.Secrets, err = secretsKeyring(cfg); err != nil {
		return env, err
	}
	logger.Info("secrets key ready", "key_id", env.Secrets.KeyID(), "previous_key_ids", env.Secrets.PreviousKeyIDs())

	if err := env.openNATS(ctx); err != nil {
		return env, err
	}
	env.registerProbes()
	return env, nil
}

// openNATS connects to NATS and sets up the link. Embedded NATS is part of the process: it
// must come up and its topology is ensured before Open returns. External NATS may be down: the
// connection then retries in the background forever and the link sets up once it connects.
// When the servers answer at start, the setup is tried before Open returns (bounded by the
// link's SetupTimeout), so a normal start is ready by the time it listens.
func (env *Env) openNATS(ctx context.Context) error {
	cfg, logger := env.Config, env.Logger
	start := time.Now()
	replicas := 1
	var err error
	if cfg.Embedded {
		env.NATS, err = embeddednats.Start(embeddednats.Config{StoreDir: cfg.NATSStoreDir(), Logger: logger})
		if err != nil {
			return err
		}
		if env.NC, err = env.NATS.Connect(); err != nil {
			return err
		}
	} else {
		env.NC, err = nats.Connect(cfg.NATSURL,
			nats.Name("dispatch24"),
			nats.RetryOnFailedConnect(true),
			nats.MaxReconnects(-1),
			nats.ReconnectWait(500*time.Millisecond),
			nats.ReconnectJitter(250*time.Millisecond, time.Second),
			// A dead peer without a closed socket (a partition) is noticed within 30s, not
			// nats.go's default of four minutes.
			nats.PingInterval(10*time.Second),
			nats.MaxPingsOutstanding(3),
			nats.ConnectHandler(func(nc *nats.Conn) { logger.Info("NATS connected", "server", nc.ConnectedUrlRedacted()) }),
			nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
				if err != nil {
					logger.Warn("NATS disconnected; reconnecting in the background", "nats_url", config.RedactURL(cfg.NATSURL), "err", err)
				}
			}),
			nats.ReconnectHandler(func(nc *nats.Conn) { logger.Info("NATS reconnected", "server", nc.ConnectedUrlRedacted()) }),
		)
		if err != nil {
			return fmt.Errorf("connecting to NATS at %s (NATS_URL): %w", config.RedactURL(cfg.NATSURL), err)
		}
		if n := len(strings.Split(cfg.NATSURL, ",")); n >= 3 {
			replicas = 3
		}
	}
	env.JS, err = jetstream.New(env.NC)
	if err != nil {
		return fmt.Errorf("JetStream: %w", err)
	}
	env.Link, err = NewNATSLink(NATSLinkConfig{
		Conn:     env.NC,
		Logger:   logger,
		Stream:   streamConfig(cfg, replicas),
		Consumer: events.ConsumerConfig{AckWait: 2*cfg.WebhookTimeout + 30*time.Second},
	})
	if err != nil {
		return err
	}
	if !env.NC.IsConnected() {
		logger.Warn("NATS not reachable; connecting in the background", "nats_url", config.RedactURL(cfg.NATSURL))
		return nil
	}
	env.Link.step(ctx) // logs "NATS ready", or why not
	if state := env.Link.State(); cfg.Embedded && state != NATSReady {
		return fmt.Errorf("embedded NATS not set up (%s): %v", state, env.Link.lastErr())
	}
	logger.Debug("NATS opened", "embedded", cfg.Embedded, "state", env.Link.State(), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// streamConfig sizes the events stream from the configuration: MaxAge is RETENTION (0: no
// bound), and NATS_STREAM_MAX_BYTES and NATS_STREAM_MAX_MSGS bound its size (0: no bound).
// The link applies them to an existing stream at every start.
func streamConfig(cfg *config.Config, replicas int) events.StreamConfig {
	unbounded := func(v int64) int64 {
		if v == 0 {
			return -1
		}
		return v
	}
	return events.StreamConfig{
		Replicas: replicas,
		MaxAge:   time.Duration(unbounded(int64(cfg.Retention))),
		MaxBytes: unbounded(cfg.StreamMaxBytes),
		MaxMsgs:  unbounded(cfg.StreamMaxMsgs),
	}
}

// Close closes the NATS connection (draining it), the embedded server and the store.
func (e *Env) Close() {
	if e.NC != nil {
		if err := e.NC.Drain(); err != nil {
			e.NC.Close()
		}
		for i := 0; i < 50 && !e.NC.IsClosed(); i++ {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if e.NATS != nil {
		e.NATS.Shutdown()
	}
	if e.DB != nil {
		e.DB.Close()
	}
}

// ReadyChecks are the readiness checks of /readyz: the store answers, and NATS is ready
// (connected to an accepted server, stream and consumer in place). With needNATS false (the
// api, which accepts into the outbox whatever NATS does) the NATS check is reported in the body
// but does not make the process unready.
func (e *Env) ReadyChecks(needNATS bool) []httpapi.Check {
	return []httpapi.Check{
		{Name: "store", Func: e.DB.Ping},
		{Name: "nats", Func: e.Link.ReadyCheck, Optional: !needNATS},
	}
}

func (e *Env) registerProbes() {
	if e.Metrics == nil {
		return
	}
	e.Metrics.Probe("dispatch24_outbox_backlog", "Events stored but not yet acknowledged by JetStream.", e.Logger,
		func(ctx context.Context) (float64, error) {
			n, err := outbox.NewArchive(e.DB).Backlog(ctx)
			return float64(n), err
		})
	e.Metrics.Probe("dispatch24_pending_retries", "Deliveries parked in the store waiting for their next attempt.", e.Logger,
		func(ctx context.Context) (float64, error) {
			n, err := delivery.NewStore(e.DB).PendingRetries(ctx)
			return float64(n), err
		})
	// Without NATS the consumer series are left out of the scrape, silently: the NATS gauges
	// say why.
	consumerInfo := func(ctx context.Context) (*jetstream.ConsumerInfo, error) {
		c := e.Link.CurrentConsumer()
		if c == nil {
			return nil, telemetry.ErrNoValue
		}
		return c.Info(ctx)
	}
	e.Metrics.Probe("dispatch24_consumer_lag", "Events in the stream not yet delivered to a dispatcher.", e.Logger,
		func(ctx context.Context) (float64, error) {
			info, err := consumerInfo(ctx)
			if err != nil {
				return 0, err
			}
			return float64(info.NumPending), nil
		})
	e.Metrics.Probe("dispatch24_consumer_ack_pending", "Events handed to dispatchers and not yet acknowledged.", e.Logger,
		func(ctx context.Context) (float64, error) {
			info, err := consumerInfo(ctx)
			if err != nil {
				return 0, err
			}
			return float64(info.NumAckPending), nil
		})
	e.Metrics.Probe("dispatch24_nats_connected", "1 while connected to a NATS server, else 0.", e.Logger,
		func(context.Context) (float64, error) { return boolGauge(e.NC.IsConnected()), nil })
	e.Metrics.Probe("dispatch24_nats_ready", "1 while NATS is usable: connected to a supported server, stream and consumer in place.", e.Logger,
		func(context.Context) (float64, error) { return boolGauge(e.Link.Ready()), nil })
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// tokenSecret returns TOKEN_SECRET, or in embedded mode the secret kept in DATA_DIR,
// generating it on the first start. With PostgreSQL and no TOKEN_SECRET (only the dispatcher
// may start so: configuration requires it of the api) there is none: nothing there signs or
// verifies our tokens, and DATA_DIR may be read-only.
func tokenSecret(cfg *config.Config) ([]byte, error) {
	if cfg.TokenSecret != "" {
		return []byte(cfg.TokenSecret), nil
	}
	if !cfg.EmbeddedStore() {
		return nil, nil
	}
	path := filepath.Join(cfg.DataDir, "token_secret")
	b, err := os.ReadFile(path)
	if err == nil {
		if s := strings.TrimSpace(string(b)); len(s) >= 32 {
			return []byte(s), nil
		}
		return nil, fmt.Errorf("token secret file %s is damaged: remove it to generate a new one (signs everyone out)", path)
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("reading token secret: %w", err)
	}
	var raw [48]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, fmt.Errorf("generating token secret: %w", err)
	}
	s := base64.RawURLEncoding.EncodeToString(raw[:])
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating DATA_DIR: %w", err)
	}
	if err := os.WriteFile(path, []byte(s+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("writing token secret: %w", err)
	}
	return []byte(s), nil
}

// secretsKeyring returns the keyring of SECRETS_KEY and SECRETS_KEY_PREVIOUS. In embedded mode
// without SECRETS_KEY the key is kept in DATA_DIR/secrets_key, generated on the first start
// (configuration requires SECRETS_KEY with PostgreSQL). Losing that file loses the stored
// webhook secrets and survey jwtSecrets: back it up with the database.
func secretsKeyring(cfg *config.Config) (*secret.Keyring, error) {
	key := cfg.SecretsKey
	if key == nil {
		path := filepath.Join(cfg.DataDir, "secrets_key")
		b, err := os.ReadFile(path)
		switch {
		case err == nil:
			if key, err = secret.ParseKey(string(b)); err != nil {
				return nil, fmt.Errorf("secrets key file %s is damaged (%v): restore it from a backup; without it stored webhook secrets and survey jwtSecrets cannot be read", path, err)
			}
		case errors.Is(err, os.ErrNotExist):
			key = secret.GenerateKey()
			if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
				return nil, fmt.Errorf("creating DATA_DIR: %w", err)
			}
			// O_EXCL: two processes starting on one DATA_DIR never write different keys.
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return nil, fmt.Errorf("writing secrets key: %w", err)
			}
			// Synced before anything is sealed with it: a key lost in a crash loses the secrets.
			_, err = f.WriteString(secret.EncodeKey(key) + "\n")
			if err == nil {
				err = f.Sync()
			}
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err == nil {
				err = syncDir(cfg.DataDir)
			}
			if err != nil {
				return nil, fmt.Errorf("writing secrets key: %w", err)
			}
		default:
			return nil, fmt.Errorf("reading secrets key: %w", err)
		}
	}
	return secret.NewKeyring(key, cfg.SecretsKeyPrevious...)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// SecretSealer seals the secrets one table keeps (endpoint.Store, survey.Store); with apply
// false it only checks that they open.
type SecretSealer interface {
	SealSecrets(ctx context.Context, apply bool) (int, error)
}

// SealSecrets runs each owner's start-up pass over the secrets it keeps: plain values (from
// before this release, or from an older binary during a rolling upgrade) and values sealed with
// a key in SECRETS_KEY_PREVIOUS are sealed with SECRETS_KEY. A value sealed with a key the
// process lacks fails the start with an error naming the key ids (a wrong SECRETS_KEY), before
// anything is written: a wrong key never seals plain values.
func (e *Env) SealSecrets(ctx context.Context, owners ...SecretSealer) error {
	start := time.Now()
	for _, o := range owners {
		if _, err := o.SealSecrets(ctx, false); err != nil {
			return fmt.Errorf("checking the stored secrets against SECRETS_KEY: %w", err)
		}
	}
	total := 0
	for _, o := range owners {
		n, err := o.SealSecrets(ctx, true)
		total += n
		if err != nil {
			return fmt.Errorf("sealing the stored secrets with SECRETS_KEY: %w", err)
		}
	}
	e.Logger.Info("stored secrets sealed with the current key", "key_id", e.Secrets.KeyID(), "resealed", total,
		"took", time.Since(start).Round(time.Millisecond))
	return nil
}
