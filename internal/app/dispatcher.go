package app

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/dispatch24/dispatch24/internal/dispatch"
	"github.com/dispatch24/dispatch24/pkg/webhook"
)

// NewDispatcher wires the delivery engine from an opened environment, the way both binaries
// run it: the process configuration's WEBHOOK_* and DISPATCH_* settings, the store, the shared
// consumer, metrics, and the global tracer provider and propagator. client is the process's
// delivery client (built from WEBHOOK_TIMEOUT and WEBHOOK_ALLOW_NETS); its owner closes it.
// It lives with the wiring so that internal/dispatch does not import the package that
// assembles it.
func NewDispatcher(env *Env, client *webhook.Client) (*dispatch.Dispatcher, error) {
	if client == nil {
		return nil, errors.New("dispatcher: a webhook client is required")
	}
	cfg := env.Config
	// The process configuration uses 0 for "never" and "no minimum span"; Config uses 0 for
	// the defaults.
	failures, span := cfg.DisableAfterFailures, cfg.DisableAfter
	if failures == 0 {
		failures = -1
	}
	if span == 0 {
		span = -1
	}
	return dispatch.New(dispatch.Config{
		DB:                   env.DB,
		Secrets:              env.Secrets,
		ConsumerFunc:         consumerFunc(env.Link),
		ConsumerResetFunc:    env.Link.Recreated,
		Client:               client,
		AttemptTimeout:       cfg.WebhookTimeout,
		Issuer:               cfg.TokenIssuer,
		RetrySchedule:        cfg.RetrySchedule,
		Concurrency:          cfg.Concurrency,
		EndpointConcurrency:  cfg.EndpointConcurrency,
		DisableAfterFailures: failures,
		DisableAfter:         span,
		Logger:               env.Logger.With("component", "dispatcher"),
		Metrics:              env.Metrics,
	})
}

// consumerFunc gives the dispatcher the link's consumer, waiting for NATS. Asked again (its
// message iterator ended: the consumer may have been deleted), it has the link check the
// topology first.
func consumerFunc(link *NATSLink) func(ctx context.Context) (jetstream.Consumer, error) {
	var asked atomic.Bool
	return func(ctx context.Context) (jetstream.Consumer, error) {
		if asked.Swap(true) {
			link.Recheck()
		}
		return link.Consumer(ctx)
	}
}
