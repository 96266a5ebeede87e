package auth

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/dispatch24/dispatch24/internal/httpapi"
	"github.com/dispatch24/dispatch24/internal/password"
	"github.com/dispatch24/dispatch24/internal/store"
)

// Service signs accounts in, issues and checks tokens, authenticates requests and administers
// global accounts and personal access tokens.
type Service struct {
	db      *store.DB
	cfg     Config
	logger  *slog.Logger
	tokens  *tokenCodec
	limiter *limiter
	// dummyHash is verified for unknown accounts; it has the costs of real hashes.
	dummyHash string
}

var _ httpapi.Authenticator = (*Service)(nil)

// New returns a Service over db.
func New(db *store.DB, cfg Config, logger *slog.Logger) (*Service, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{
		db:     db,
		cfg:    cfg,
		logger: logger.With("component", "auth"),
		tokens: newTokenCodec(cfg.Secret, cfg.Issuer, cfg.Leeway, cfg.NowFunc),
		limiter: &limiter{
			db: db, secret: cfg.Secret, max: cfg.MaxFailures, maxAddr: cfg.MaxAddressFailures,
			window: cfg.FailureWindow, now: cfg.NowFunc,
		},
	}
	if cfg.PasswordParams == password.DefaultParams {
		s.dummyHash = password.Dummy()
	} else {
		h, err := password.HashWith(cfg.PasswordParams, randomString(16))
		if err != nil {
			return nil, fmt.Errorf("auth: dummy hash: %w", err)
		}
		s.dummyHash = h
	}
	return s, nil
}

// Register adds the routes of CONTRACT section 3, each with its policy.
func (s *Service) Register(rt *httpapi.Router) {
	rt.Handle("POST /api/signin", httpapi.Public, s.handleSignIn)
	rt.Handle("POST /api/signin/alias", httpapi.Public, s.handleSignInAlias)
	rt.Handle("POST /api/signin/token/{token}", httpapi.Public, s.handleSignInToken)
	rt.Handle("POST /api/refresh", httpapi.Public, s.handleRefresh)
	rt.Handle("POST /api/signout", httpapi.Public, s.handleSignOut)

	rt.Handle("POST /api/admin/user/personal-access-tokens", httpapi.Global, s.handleCreatePAT)
	rt.Handle("GET /api/admin/user/personal-access-tokens", httpapi.Global, s.handleListPATs)
	rt.Handle("DELETE /api/admin/user/personal-access-tokens/{id}", httpapi.Global, s.handleDeletePAT)

	rt.Handle("POST /api/admin/users", httpapi.Admin, s.handleCreateUser)
	rt.Handle("GET /api/admin/users", httpapi.Admin, s.handleListUsers)
	rt.Handle("GET /api/admin/users/{id}", httpapi.Admin, s.handleGetUser)
	rt.Handle("PATCH /api/admin/users/{id}", httpapi.Admin, s.handlePatchUser)
	rt.Handle("DELETE /api/admin/users/{id}", httpapi.Admin, s.handleDeleteUser)
}

// Run prunes old sign-in failures and expired refresh tokens every PruneInterval until ctx
// ends. Every replica may run it: the deletes are idempotent.
func (s *Service) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.PruneInterval)
	defer t.Stop()
	for {
		if err := s.Prune(ctx); err != nil && ctx.Err() == nil {
			s.logger.WarnContext(ctx, "pruning auth tables", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Prune deletes sign-in failures that left the rate limit's window and refresh tokens past
// their expiry (plus the leeway, after which no check would accept them anyway).
func (s *Service) Prune(ctx context.Context) error {
	now := s.cfg.NowFunc()
	f, err := s.accounts().PruneSignInFailures(ctx, now.Add(-s.cfg.FailureWindow))
	if err != nil {
		return err
	}
	t, err := s.accounts().PruneRefreshTokens(ctx, now.Add(-s.cfg.Leeway))
	if err != nil {
		return err
	}
	if f > 0 || t > 0 {
		s.logger.DebugContext(ctx, "pruned auth tables", "signin_failures", f, "refresh_tokens", t)
	}
	return nil
}
