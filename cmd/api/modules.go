package main

import (
	"context"
	"io"

	"github.com/dispatch24/dispatch24/internal/app"
	"github.com/dispatch24/dispatch24/internal/auth"
	"github.com/dispatch24/dispatch24/internal/delivery"
	"github.com/dispatch24/dispatch24/internal/endpoint"
	"github.com/dispatch24/dispatch24/internal/httpapi"
	"github.com/dispatch24/dispatch24/internal/outbox"
	"github.com/dispatch24/dispatch24/internal/password"
	"github.com/dispatch24/dispatch24/internal/retention"
	"github.com/dispatch24/dispatch24/internal/submission"
	"github.com/dispatch24/dispatch24/internal/survey"
	"github.com/dispatch24/dispatch24/pkg/webhook"
)

// modules are the API's services, wired from an opened environment. Each service registers
// its own routes (every route with its access policy) and may add long-running components
// (the outbox relay, in-process delivery workers).
type modules struct {
	authenticator httpapi.Authenticator
	registrars    []func(rt *httpapi.Router)
	components    []app.Component
}

func (m *modules) register(rt *httpapi.Router) {
	for _, r := range m.registrars {
		r(rt)
	}
}

// newModules builds every service. stdout receives the one-time first-admin notice.
func newModules(ctx context.Context, env *app.Env, stdout io.Writer) (*modules, error) {
	m := &modules{}
	_ = ctx
	_ = stdout
	// --- module wiring (auth, survey, submission, webhooks, dispatch) ---
	// The outbox relay publishes the events the survey app's routes store with their changes.
	// It publishes only through a server the NATS link accepts, and the link wakes it as soon
	// as NATS is set up again after an outage.
	relay, err := outbox.New(outbox.Config{DB: env.DB, JS: env.JS, Metrics: env.Metrics, Logger: env.Logger,
		UsableFunc: env.Link.Usable})
	if err != nil {
		return nil, err
	}
	env.Link.OnReady(relay.Wake)
	intake, err := submission.New(submission.Config{DB: env.DB, Outbox: relay, Metrics: env.Metrics, Logger: env.Logger})
	if err != nil {
		return nil, err
	}
	m.registrars = append(m.registrars, intake.Register)
	m.components = append(m.components, app.Component{Name: "outbox-relay", Run: relay.Run})
	// One bound on the password hashes running at once, shared by every service that hashes
	// (sign-in, account and respondent administration, imports, background upgrades).
	hasher := password.NewHasher(password.HasherConfig{})
	env.Logger.Info("password hashing bound", "bound", hasher.String())
	surveys, err := survey.New(survey.Config{DB: env.DB, Secrets: env.Secrets, SurveyAppURL: env.Config.SurveyAppURL, Logger: env.Logger, Hasher: hasher})
	if err != nil {
		return nil, err
	}
	authService, err := auth.New(env.DB, auth.Config{
		Respondents: surveys.Store(),
		Hasher:      hasher,
		Secret:      env.TokenSecret,
		Issuer:      env.Config.TokenIssuer,
		AccessTTL:   env.Config.AccessTokenTTL,
		RefreshTTL:  env.Config.RefreshTokenTTL,
		Metrics:     auth.NewMetrics(env.Metrics.Registry),
	}, env.Logger)
	if err != nil {
		return nil, err
	}
	if err := authService.EnsureAdmin(ctx, auth.FirstAdmin{
		Email: env.Config.AdminEmail, Password: env.Config.AdminPassword, PublicURL: env.Config.PublicURL,
		Given: env.Config.AdminGiven,
	}, stdout); err != nil {
		return nil, err
	}
	m.authenticator = authService
	m.registrars = append(m.registrars, authService.Register)
	m.components = append(m.components, app.Component{Name: "auth-prune", Run: authService.Run})
	// webhookClient is the process's one delivery client (keep-alive pool, SSRF-safe dialer):
	// test sends use it, and in-process delivery workers should share it.
	webhookClient, err := webhook.NewClient(webhook.ClientConfig{
		Timeout:   env.Config.WebhookTimeout,
		AllowNets: env.Config.AllowNets,
		UserAgent: "Dispatch24/" + app.Version,
	})
	if err != nil {
		return nil, err
	}
	endpoints, err := endpoint.NewService(endpoint.Config{
		DB: env.DB, Secrets: env.Secrets, Surveys: surveys.Store(), Client: webhookClient, AllowNets: env.Config.AllowNets,
		Issuer: env.Config.TokenIssuer, Logger: env.Logger, Metrics: env.Metrics,
	})
	if err != nil {
		return nil, err
	}
	replayer, err := delivery.NewReplayer(delivery.ReplayerConfig{DB: env.DB, Logger: env.Logger})
	if err != nil {
		return nil, err
	}
	deliveries, err := delivery.NewService(delivery.Config{DB: env.DB, Replayer: replayer, Logger: env.Logger, Retention: env.Config.Retention})
	if err != nil {
		return nil, err
	}
	m.registrars = append(m.registrars, endpoints.Register, deliveries.Register)
	m.components = append(m.components, app.Component{Name: "replayer", Run: replayer.Run})
	m.registrars = append(m.registrars, surveys.Register)
	if err := env.SealSecrets(ctx, endpoints.Store(), surveys.Store()); err != nil {
		return nil, err
	}
	m.components = append(m.components, app.Component{Name: "password-hash-upgrade", Run: surveys.RunHashUpgrades})
	// The retention purge runs in every api and dispatcher; a lease in the store lets one of
	// them purge at a time.
	purger, err := retention.New(retention.Config{DB: env.DB, Retention: env.Config.Retention,
		Registerer: env.Metrics.Registry, Logger: env.Logger.With("component", "retention")})
	if err != nil {
		return nil, err
	}
	m.components = append(m.components, app.Component{Name: "retention", Run: purger.Run})
	// In-process delivery workers (embedded mode, or DISPATCH_IN_PROCESS=true), sharing the
	// process's webhook client.
	if env.Config.DispatchInProcess {
		dispatcher, err := app.NewDispatcher(env, webhookClient)
		if err != nil {
			return nil, err
		}
		m.components = append(m.components, app.Component{Name: "dispatcher", Run: dispatcher.Run})
	}
	return m, nil
}
