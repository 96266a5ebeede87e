package main

import (
	"context"
	"io"

	"github.com/dispatch24/dispatch24/internal/app"
	"github.com/dispatch24/dispatch24/internal/httpapi"
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
	return m, nil
}
