package delivery

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/dispatch24/dispatch24/internal/httpapi"
	"github.com/dispatch24/dispatch24/internal/outbox"
	"github.com/dispatch24/dispatch24/internal/store"
)

// Config configures a Service.
type Config struct {
	// DB is the store. Required.
	DB *store.DB
	// Replayer, when set, is kicked when a range replay is recorded, so its batches start at
	// once instead of at the next poll.
	Replayer *Replayer
	// Logger receives replay requests. Default slog.Default().
	Logger *slog.Logger
	// NowFunc returns the current time. Default time.Now.
	NowFunc func() time.Time
	// Retention is the store's RETENTION (0: nothing is purged by age): a delivery id older
	// than that which names no stored delivery is answered as purged.
	Retention time.Duration
}

// WithDefaults returns c with its zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.NowFunc == nil {
		c.NowFunc = time.Now
	}
	return c
}

func (c Config) validate() error {
	if c.DB == nil {
		return errors.New("a store is required")
	}
	return nil
}

// Service answers the deliveries and replays routes.
type Service struct {
	cfg   Config
	store *Store
}

// NewService returns a Service for cfg, with defaults applied.
func NewService(cfg Config) (*Service, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("delivery service: %w", err)
	}
	return &Service{cfg: cfg, store: NewStore(cfg.DB)}, nil
}

// Store returns the service's queries, for other views (the console, ops commands).
func (s *Service) Store() *Store { return s.store }

// Register adds the routes to rt. They are Global: admins see every survey, staff the surveys
// they are assigned to, and anything else is answered as if it did not exist.
func (s *Service) Register(rt *httpapi.Router) {
	rt.Handle("GET /api/admin/deliveries", httpapi.Global, s.handleList)
	rt.Handle("GET /api/admin/deliveries/{id}", httpapi.Global, s.handleGet)
	rt.Handle("POST /api/admin/deliveries/{id}/replay", httpapi.Global, s.handleReplayOne)
	rt.Handle("POST /api/admin/deliveries/replay", httpapi.Global, s.handleReplayRange)
	rt.Handle("GET /api/admin/replays/{replayId}", httpapi.Global, s.handleGetReplay)
}

func surveyNotFound() *httpapi.Problem { return httpapi.NotFound("survey_not_found", "no such survey") }

func deliveryNotFound() *httpapi.Problem {
	return httpapi.NotFound("delivery_not_found", "no such delivery")
}

func webhookNotFound() *httpapi.Problem {
	return httpapi.NotFound("webhook_not_found", "no such webhook")
}

type listResponse struct {
	Items      []deliveryView `json:"items"`
	NextCursor *string        `json:"nextCursor"`
}

func (s *Service) handleList(w http.ResponseWriter, r *http.Request) error {
	q, err := ParseListQuery(r.URL.Query())
	if err != nil {
		return err
	}
	scope := ScopeOf(httpapi.PrincipalFrom(r.Context()))
	if q.SurveyID != "" && !scope.Allows(q.SurveyID) {
		return surveyNotFound()
	}
	items, next, err := s.store.List(r.Context(), scope, q)
	if err != nil {
		return err
	}
	resp := listResponse{Items: make([]deliveryView, len(items))}
	for i, d := range items {
		resp.Items[i] = viewOf(d)
	}
	if next != nil {
		c := next.Encode()
		resp.NextCursor = &c
	}
	httpapi.WriteJSON(w, http.StatusOK, resp)
	return nil
}

// detail is a delivery with its attempt log.
type detail struct {
	deliveryView
	AttemptLog []attemptView `json:"attemptLog"`
}

func (s *Service) handleGet(w http.ResponseWriter, r *http.Request) error {
	d, err := s.get(r)
	if err != nil {
		return err
	}
	attempts, err := s.store.Attempts(r.Context(), d.ID)
	if err != nil {
		return err
	}
	log := make([]attemptView, len(attempts))
	for i := range attempts {
		log[i] = attemptViewOf(&attempts[i])
	}
	httpapi.WriteJSON(w, http.StatusOK, detail{deliveryView: viewOf(d), AttemptLog: log})
	return nil
}

// get returns the delivery named by the path if the caller may see it. A delivery that is not
// stored is answered 410 delivery_purged when its id shows it was purged (Store.Gone), 404
// delivery_not_found otherwise.
func (s *Service) get(r *http.Request) (*Delivery, error) {
	id := r.PathValue("id")
	d, err := s.store.Get(r.Context(), ScopeOf(httpapi.PrincipalFrom(r.Context())), id)
	switch {
	case errors.Is(err, errOutOfScope):
		return nil, deliveryNotFound()
	case errors.Is(err, store.ErrNotFound):
		why, err := s.store.Gone(r.Context(), id, s.cfg.NowFunc(), s.cfg.Retention)
		switch {
		case err != nil:
			return nil, err
		case why == GoneRetention:
			return nil, httpapi.NewProblem(http.StatusGone, "delivery_purged",
				"this delivery was created before the retention period ("+s.cfg.Retention.String()+") and has been purged")
		case why == GoneSurvey:
			return nil, httpapi.NewProblem(http.StatusGone, "delivery_purged",
				"this delivery is no longer stored: it was deleted with its survey")
		}
		return nil, deliveryNotFound()
	}
	return d, err
}

type replayOneResponse struct {
	DeliveryID string `json:"deliveryId"`
	ReplayOf   string `json:"replayOf"`
}

func (s *Service) handleReplayOne(w http.ResponseWriter, r *http.Request) error {
	d, err := s.get(r)
	if err != nil {
		return err
	}
	erased, err := outbox.Erased(r.Context(), s.cfg.DB, d.EventID)
	if err != nil {
		return err
	}
	if erased {
		return httpapi.NewProblem(http.StatusGone, "event_erased",
			"the event's payload was erased when its respondent was deleted; it cannot be sent again")
	}
	nd, err := s.store.ReplayOne(r.Context(), d, s.cfg.NowFunc())
	switch {
	case errors.Is(err, ErrEndpointDeleted):
		return webhookNotFound()
	case errors.Is(err, ErrEndpointDisabled):
		return httpapi.Conflict("endpoint_disabled", "the webhook endpoint is disabled; enable it before replaying")
	case errors.Is(err, ErrDeliveryGone):
		// The purge (or the survey's deletion) took it between the read above and the replay:
		// the same answer as for a delivery already gone when asked for.
		return httpapi.NewProblem(http.StatusGone, "delivery_purged",
			"this delivery was deleted (retention purge or its survey's deletion) while the replay was being made")
	case err != nil:
		return err
	}
	s.cfg.Logger.InfoContext(r.Context(), "delivery replayed", "delivery_id", nd.ID, "replay_of", d.ID,
		"webhook_id", d.WebhookID, "by", principalID(r))
	httpapi.WriteJSON(w, http.StatusAccepted, replayOneResponse{DeliveryID: nd.ID, ReplayOf: d.ID})
	return nil
}

type replayRangeResponse struct {
	ReplayID *string `json:"replayId"`
	Matched  int64   `json:"matched"`
	DryRun   bool    `json:"dryRun"`
}

func (s *Service) handleReplayRange(w http.ResponseWriter, r *http.Request) error {
	if err := httpapi.RequireContentType(r, "application/json"); err != nil {
		return err
	}
	body, err := httpapi.ReadBody(w, r, httpapi.DefaultBodyLimit)
	if err != nil {
		return err
	}
	f, dryRun, err := ParseReplayRequest(body)
	if err != nil {
		return err
	}
	p := httpapi.PrincipalFrom(r.Context())
	scope := ScopeOf(p)
	if f.SurveyID == "" && !scope.All {
		return httpapi.Validation(httpapi.FieldError{Field: "surveyId", Message: "is required for staff accounts"})
	}
	if f.SurveyID != "" && !scope.Allows(f.SurveyID) {
		return surveyNotFound()
	}
	if f.WebhookID != "" {
		ws, err := s.store.WebhookSurvey(r.Context(), f.WebhookID)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return webhookNotFound()
		case err != nil:
			return err
		case !scope.Allows(ws) || (f.SurveyID != "" && ws != f.SurveyID):
			return webhookNotFound()
		}
	}
	now := store.FromMicros(store.Micros(s.cfg.NowFunc()))
	matched, err := s.store.CountReplay(r.Context(), f, now)
	if err != nil {
		return err
	}
	if dryRun {
		httpapi.WriteJSON(w, http.StatusAccepted, replayRangeResponse{Matched: matched, DryRun: true})
		return nil
	}
	rp := &Replay{ID: NewReplayID(), Filter: f, Matched: matched, CreatedAt: now, CreatedBy: principalID(r)}
	if err := s.store.CreateReplay(r.Context(), rp); err != nil {
		if errors.Is(err, ErrReplayRunning) {
			return httpapi.Conflict("replay_running", "a replay of the same deliveries is running; follow its progress or wait for it to finish")
		}
		return err
	}
	if s.cfg.Replayer != nil {
		s.cfg.Replayer.Kick()
	}
	s.cfg.Logger.InfoContext(r.Context(), "range replay started", "replay_id", rp.ID, "matched", matched,
		"filter", rp.Filter.Key(), "by", rp.CreatedBy)
	httpapi.WriteJSON(w, http.StatusAccepted, replayRangeResponse{ReplayID: &rp.ID, Matched: matched})
	return nil
}

// ReplayView is a range replay's progress as the API shows it.
type ReplayView struct {
	ID        string       `json:"id"`
	Filter    ReplayFilter `json:"filter"`
	Matched   int64        `json:"matched"`
	Enqueued  int64        `json:"enqueued"`
	Done      int64        `json:"done"`
	Succeeded int64        `json:"succeeded"`
	Failed    int64        `json:"failed"`
	Status    string       `json:"status"`
	Error     string       `json:"error,omitempty"`
	CreatedAt time.Time    `json:"createdAt"`
	UpdatedAt time.Time    `json:"updatedAt"`
}

// NewReplayView returns the API view of rp.
func NewReplayView(rp *Replay) ReplayView {
	return ReplayView{
		ID: rp.ID, Filter: rp.Filter, Matched: rp.Matched, Enqueued: rp.Enqueued, Done: rp.Done,
		Succeeded: rp.Succeeded, Failed: rp.Failed,
		Status: rp.Status, Error: rp.Error, CreatedAt: rp.CreatedAt, UpdatedAt: rp.UpdatedAt,
	}
}

func (s *Service) handleGetReplay(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("replayId")
	rp, err := s.store.GetReplay(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return httpapi.NotFound("replay_not_found", "no such replay")
	}
	if err != nil {
		return err
	}
	scope := ScopeOf(httpapi.PrincipalFrom(r.Context()))
	// A replay across every survey is an admin's; staff see the replays of their surveys.
	if !scope.All && (rp.Filter.SurveyID == "" || !scope.Allows(rp.Filter.SurveyID)) {
		return httpapi.NotFound("replay_not_found", "no such replay")
	}
	if rp.Status == ReplayRunning {
		if rp, err = s.store.RefreshReplay(r.Context(), id, s.cfg.NowFunc()); err != nil {
			return err
		}
	}
	httpapi.WriteJSON(w, http.StatusOK, NewReplayView(rp))
	return nil
}

func principalID(r *http.Request) string {
	if p := httpapi.PrincipalFrom(r.Context()); p != nil {
		return p.UserID
	}
	return ""
}
