package survey

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"time"

	"github.com/dispatch24/dispatch24/internal/httpapi"
	"github.com/dispatch24/dispatch24/internal/password"
	"github.com/dispatch24/dispatch24/internal/secret"
	"github.com/dispatch24/dispatch24/internal/store"
)

// DefaultImportBodyLimit bounds a CSV import: 100,000 rows with passwords, names and a few
// custom fields fit with room to spare.
const DefaultImportBodyLimit = 64 << 20

// DefaultImportPasswordParams hash the passwords of a CSV import: argon2id over 512 KiB, one
// pass, about half a millisecond per password on one core, where DefaultParams (19 MiB, two
// passes) take about 30 ms. Hashed in parallel on every core, 100,000 imported passwords take
// tens of seconds on two cores instead of half an hour.
//
// The trade-off is deliberate. A respondent's auth token, stored in clear in the same row
// because exports must show it, grants the same access as the password, so a stolen database
// already opens every respondent account; the password hash only guards the plain password
// against reuse elsewhere, and imported passwords are assigned by researchers, not chosen by
// respondents. Passwords set one at a time (admin API, create-user) use DefaultParams. The
// PHC string records the parameters, so sign-in verifies both kinds; a failed check of a
// cheap hash is padded to the full cost so that timing does not reveal which user names were
// imported. The cheap hash does not stay: RunHashUpgrades wraps it to the full cost without the
// password soon after the import (password.Upgrade), and a sign-in before that replaces it.
var DefaultImportPasswordParams = password.Params{Memory: 512, Time: 1, Threads: 1, KeyLen: 32, SaltLen: 16}

// Config configures a Service.
type Config struct {
	// DB is the store (required).
	DB *store.DB
	// Secrets seals survey jwtSecrets in the store (SECRETS_KEY, required).
	Secrets *secret.Keyring
	// SurveyAppURL is the survey app's base URL (SURVEY_APP_URL, required): authentication
	// URLs and option B's redirects point there.
	SurveyAppURL string
	// Logger receives internal errors (default: discarded). Tokens are never logged.
	Logger *slog.Logger
	// PasswordParams hash passwords set one at a time (default password.DefaultParams).
	PasswordParams password.Params
	// ImportPasswordParams hash the passwords of a CSV import (default
	// DefaultImportPasswordParams).
	ImportPasswordParams password.Params
	// ImportBodyLimit bounds a CSV import's body in bytes (default DefaultImportBodyLimit).
	ImportBodyLimit int64
	// ImportWorkers is the number of goroutines hashing imported passwords (default
	// GOMAXPROCS).
	ImportWorkers int
	// Hasher bounds the password hashes running at once in the process (default: a Hasher
	// of its own with password.HasherConfig's defaults); share the auth service's.
	Hasher *password.Hasher
	// HashUpgradeInterval is how often RunHashUpgrades looks for imported hashes to upgrade
	// (default DefaultHashUpgradeInterval).
	HashUpgradeInterval time.Duration
	// NowFunc is the clock (default time.Now).
	NowFunc func() time.Time
}

// WithDefaults returns c with every unset field at its default.
func (c Config) WithDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if c.PasswordParams == (password.Params{}) {
		c.PasswordParams = password.DefaultParams
	}
	if c.ImportPasswordParams == (password.Params{}) {
		c.ImportPasswordParams = DefaultImportPasswordParams
	}
	if c.ImportBodyLimit <= 0 {
		c.ImportBodyLimit = DefaultImportBodyLimit
	}
	if c.ImportWorkers <= 0 {
		c.ImportWorkers = runtime.GOMAXPROCS(0)
	}
	if c.NowFunc == nil {
		c.NowFunc = time.Now
	}
	if c.Hasher == nil {
		c.Hasher = password.NewHasher(password.HasherConfig{})
	}
	if c.HashUpgradeInterval <= 0 {
		c.HashUpgradeInterval = DefaultHashUpgradeInterval
	}
	c.SurveyAppURL = strings.TrimRight(c.SurveyAppURL, "/")
	return c
}

func (c Config) validate() error {
	if c.DB == nil {
		return errors.New("survey: Config.DB is required")
	}
	if c.Secrets == nil {
		return errors.New("survey: Config.Secrets is required")
	}
	u, err := url.Parse(c.SurveyAppURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("survey: Config.SurveyAppURL must be an absolute http(s) URL")
	}
	return nil
}

// Service is survey and respondent administration and respondent account creation.
type Service struct {
	cfg    Config
	store  *Store
	logger *slog.Logger
	// imported wakes RunHashUpgrades after an import with passwords.
	imported chan struct{}
}

// New returns a Service.
func New(cfg Config) (*Service, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Service{cfg: cfg, store: NewStore(cfg.DB, cfg.Secrets), logger: cfg.Logger, imported: make(chan struct{}, 1)}, nil
}

// Store returns the service's queries, for packages that read survey settings.
func (s *Service) Store() *Store { return s.store }

// now is the clock, truncated to what the store keeps.
func (s *Service) now() time.Time { return s.cfg.NowFunc().UTC().Truncate(time.Microsecond) }

// hashPassword hashes a password set one at a time, within the process's hashing bound.
func (s *Service) hashPassword(ctx context.Context, pw string) (string, error) {
	h, err := s.cfg.Hasher.Hash(ctx, s.cfg.PasswordParams, pw)
	if err != nil {
		return "", s.hashError(err)
	}
	return h, nil
}

// hashError turns a failed hash into what the handler returns: a full hashing bound is a 503
// with Retry-After, nothing was written.
func (s *Service) hashError(err error) error {
	if errors.Is(err, password.ErrBusy) {
		p := httpapi.NewProblem(http.StatusServiceUnavailable, "busy", "too many password checks at once; retry shortly")
		p.RetryAfter = s.cfg.Hasher.Config().RetryAfter
		return p
	}
	return fmt.Errorf("hashing password: %w", err)
}

// Register adds the section 4 routes to rt.
func (s *Service) Register(rt *httpapi.Router) {
	rt.Handle("POST /api/admin/surveys", httpapi.Admin, s.handleCreateSurvey)
	rt.Handle("GET /api/admin/surveys", httpapi.Global, s.handleListSurveys)
	rt.Handle("GET /api/admin/surveys/{surveyId}", httpapi.SurveyStaff, s.handleGetSurvey)
	rt.Handle("PATCH /api/admin/surveys/{surveyId}", httpapi.SurveyStaff, s.handlePatchSurvey)
	// Admin-only in the handler (see the package doc), so unassigned staff still get 404.
	rt.Handle("DELETE /api/admin/surveys/{surveyId}", httpapi.SurveyStaff, s.handleDeleteSurvey)

	rt.Handle("POST /api/admin/surveys/{surveyId}/respondents", httpapi.SurveyStaff, s.handleCreateRespondent)
	rt.Handle("GET /api/admin/surveys/{surveyId}/respondents", httpapi.SurveyStaff, s.handleListRespondents)
	rt.Handle("POST /api/admin/surveys/{surveyId}/respondents/import", httpapi.SurveyStaff, s.handleImportRespondents)
	rt.Handle("GET /api/admin/surveys/{surveyId}/respondents/export", httpapi.SurveyStaff, s.handleExportRespondents)
	rt.Handle("GET /api/admin/surveys/{surveyId}/respondents/{username}", httpapi.SurveyStaff, s.handleGetRespondent)
	rt.Handle("PATCH /api/admin/surveys/{surveyId}/respondents/{username}", httpapi.SurveyStaff, s.handlePatchRespondent)
	rt.Handle("DELETE /api/admin/surveys/{surveyId}/respondents/{username}", httpapi.SurveyStaff, s.handleDeleteRespondent)

	rt.Handle("POST /api/surveys/{surveyId}/create-user", httpapi.Public, s.handleCreateUser)
	rt.Handle("GET /{surveyId}/create-user/{token}", httpapi.Public, s.handleCreateUserRedirect)
}
