package endpoint

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"time"
	"unicode/utf8"

	"github.com/dispatch24/dispatch24/internal/delivery"
	"github.com/dispatch24/dispatch24/internal/httpapi"
	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/pkg/events"
	"github.com/dispatch24/dispatch24/pkg/webhook"
)

// maxDescription bounds an endpoint's description, in characters.
const maxDescription = 1000

// Register adds the endpoint routes to rt, all behind the SurveyStaff policy: admins and the
// staff assigned to the survey.
func (s *Service) Register(rt *httpapi.Router) {
	const base = "/api/admin/surveys/{surveyId}/webhooks"
	rt.Handle("POST "+base, httpapi.SurveyStaff, s.handleCreate)
	rt.Handle("GET "+base, httpapi.SurveyStaff, s.handleList)
	rt.Handle("GET "+base+"/{webhookId}", httpapi.SurveyStaff, s.handleGet)
	rt.Handle("PATCH "+base+"/{webhookId}", httpapi.SurveyStaff, s.handleUpdate)
	rt.Handle("DELETE "+base+"/{webhookId}", httpapi.SurveyStaff, s.handleDelete)
	rt.Handle("POST "+base+"/{webhookId}/rotate-secret", httpapi.SurveyStaff, s.handleRotate)
	rt.Handle("POST "+base+"/{webhookId}/test", httpapi.SurveyStaff, s.handleTest)
}

// View is an endpoint as the API shows it: never with its secrets. A v1a endpoint shows the
// public key of its signing key, which receivers verify with.
type View struct {
	ID                  string     `json:"id"`
	SurveyID            string     `json:"surveyId"`
	URL                 string     `json:"url"`
	Events              []string   `json:"events"`
	Description         string     `json:"description"`
	SignatureScheme     string     `json:"signatureScheme"`
	PublicKey           string     `json:"publicKey,omitempty"`
	Ordering            string     `json:"ordering"`
	Disabled            bool       `json:"disabled"`
	DisabledReason      string     `json:"disabledReason"`
	DisabledAt          *time.Time `json:"disabledAt"`
	ConsecutiveFailures int        `json:"consecutiveFailures"`
	RateLimit           *int       `json:"rateLimit"`
	SecretRotating      bool       `json:"secretRotating"`
	SecretRotatingUntil *time.Time `json:"secretRotatingUntil"`
	CreatedAt           time.Time  `json:"createdAt"`
	UpdatedAt           time.Time  `json:"updatedAt"`
}

// NewView returns the API view of e at now.
func NewView(e *Endpoint, now time.Time) (View, error) {
	pub, err := e.PublicKey()
	if err != nil {
		// The error never repeats the key.
		return View{}, fmt.Errorf("webhook %s: %w", e.ID, err)
	}
	v := View{
		ID:                  e.ID,
		SurveyID:            e.SurveyID,
		URL:                 e.URL,
		Events:              e.Events,
		Description:         e.Description,
		SignatureScheme:     e.SignatureScheme,
		PublicKey:           pub,
		Ordering:            e.Ordering,
		Disabled:            e.Disabled,
		DisabledReason:      e.DisabledReason,
		DisabledAt:          timePtr(e.DisabledAt),
		ConsecutiveFailures: e.ConsecutiveFailures,
		CreatedAt:           e.CreatedAt,
		UpdatedAt:           e.UpdatedAt,
	}
	if e.RateLimit > 0 {
		limit := e.RateLimit
		v.RateLimit = &limit
	}
	if e.Rotating(now) {
		v.SecretRotating = true
		v.SecretRotatingUntil = timePtr(e.PreviousSecretUntil)
	}
	return v, nil
}

// createdView is the answer to a creation: with rotation, the only time a v1 endpoint's secret
// is shown. A v1a endpoint has no secret to show: its View carries the public key.
type createdView struct {
	View
	Secret string `json:"secret,omitempty"`
}

// shownSecret returns what an answer may show of e's new secret: a v1 secret, which the
// receiver must hold; never a v1a signing key.
func shownSecret(e *Endpoint) string {
	if e.SignatureScheme == SchemeV1 {
		return e.Secret
	}
	return ""
}

type createRequest struct {
	URL             string         `json:"url"`
	Events          []string       `json:"events"`
	Description     string         `json:"description"`
	SignatureScheme string         `json:"signatureScheme"`
	RateLimit       rateLimitField `json:"rateLimit"`
	Ordering        string         `json:"ordering"`
}

// checkOrdering validates a requested ordering.
func checkOrdering(ordering string) *httpapi.FieldError {
	if !ValidOrdering(ordering) {
		return &httpapi.FieldError{Field: "ordering", Message: "must be \"none\" or \"fifo\", not " + quote(ordering)}
	}
	return nil
}

// MaxRateLimit bounds an endpoint's rateLimit: 100,000 deliveries a second is far beyond what
// one endpoint takes, and keeps the interval between two tokens at 10 µs or more (the store
// counts in microseconds).
const MaxRateLimit = 100_000

// rateLimitField is the rateLimit of a request body as sent: Set tells a field given as null
// (no limit) from one left out (unchanged, for a PATCH).
type rateLimitField struct {
	Set bool
	Raw json.RawMessage
}

// UnmarshalJSON keeps the value to check it with its field's message (checkRateLimit),
// instead of the decoder's generic type error.
func (f *rateLimitField) UnmarshalJSON(b []byte) error {
	f.Set, f.Raw = true, append(json.RawMessage(nil), b...)
	return nil
}

// checkRateLimit validates a rateLimit given in a body: null is no limit (0), else a whole
// number from 1 to MaxRateLimit (20 and 20.0 alike, as JSON Schema's integer).
func checkRateLimit(raw json.RawMessage) (int, *httpapi.FieldError) {
	if string(raw) == "null" {
		return 0, nil
	}
	fe := &httpapi.FieldError{Field: "rateLimit",
		Message: fmt.Sprintf("must be a whole number of deliveries per second from 1 to %d, or null for no limit", MaxRateLimit)}
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil || f != math.Trunc(f) || f < 1 || f > MaxRateLimit {
		return 0, fe
	}
	return int(f), nil
}

// checkScheme validates a requested signatureScheme.
func checkScheme(scheme string) *httpapi.FieldError {
	if !ValidScheme(scheme) {
		return &httpapi.FieldError{Field: "signatureScheme", Message: "must be \"v1\" or \"v1a\", not " + quote(scheme)}
	}
	return nil
}

func (s *Service) handleCreate(w http.ResponseWriter, r *http.Request) error {
	var req createRequest
	if err := httpapi.DecodeJSON(w, r, 0, &req); err != nil {
		return err
	}
	var errs []httpapi.FieldError
	if fe := s.checkURL(r, req.URL); fe != nil {
		errs = append(errs, *fe)
	}
	evs := []string{events.TypeSessionSubmitted}
	if req.Events != nil {
		var msg string
		if evs, msg = NormalizeEvents(req.Events); msg != "" {
			errs = append(errs, httpapi.FieldError{Field: "events", Message: msg})
		}
	}
	if fe := checkDescription(req.Description); fe != nil {
		errs = append(errs, *fe)
	}
	if req.SignatureScheme == "" {
		req.SignatureScheme = SchemeV1
	} else if fe := checkScheme(req.SignatureScheme); fe != nil {
		errs = append(errs, *fe)
	}
	var rateLimit int
	if req.RateLimit.Set {
		var fe *httpapi.FieldError
		if rateLimit, fe = checkRateLimit(req.RateLimit.Raw); fe != nil {
			errs = append(errs, *fe)
		}
	}
	if req.Ordering == "" {
		req.Ordering = OrderingNone
	} else if fe := checkOrdering(req.Ordering); fe != nil {
		errs = append(errs, *fe)
	}
	if len(errs) > 0 {
		return httpapi.Validation(errs...)
	}
	now := s.cfg.NowFunc().UTC()
	e := &Endpoint{
		ID:              NewID(),
		SurveyID:        r.PathValue("surveyId"),
		URL:             req.URL,
		Description:     req.Description,
		Events:          evs,
		SignatureScheme: req.SignatureScheme,
		Secret:          newSecret(req.SignatureScheme),
		RateLimit:       rateLimit,
		Ordering:        req.Ordering,
		CreatedAt:       now,
		UpdatedAt:       now,
	}
	if err := s.store.Create(r.Context(), e); err != nil {
		if errors.Is(err, ErrSurveyNotFound) {
			return httpapi.NotFound("survey_not_found", "no such survey")
		}
		return err
	}
	// Store round-trips times at microsecond precision; answer with what a GET will show.
	e.CreatedAt, e.UpdatedAt = store.FromMicros(store.Micros(now)), store.FromMicros(store.Micros(now))
	v, err := NewView(e, now)
	if err != nil {
		return err
	}
	s.cfg.Logger.InfoContext(r.Context(), "webhook created", "webhook_id", e.ID, "survey_id", e.SurveyID,
		"signature_scheme", e.SignatureScheme, "ordering", e.Ordering, "by", principalID(r))
	w.Header().Set("Cache-Control", "no-store")
	httpapi.WriteJSON(w, http.StatusCreated, createdView{View: v, Secret: shownSecret(e)})
	return nil
}

func (s *Service) handleList(w http.ResponseWriter, r *http.Request) error {
	list, err := s.store.List(r.Context(), r.PathValue("surveyId"))
	if err != nil {
		return err
	}
	now := s.cfg.NowFunc()
	items := make([]View, len(list))
	for i, e := range list {
		if items[i], err = NewView(e, now); err != nil {
			return err
		}
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"items": items})
	return nil
}

func (s *Service) handleGet(w http.ResponseWriter, r *http.Request) error {
	e, err := s.get(r)
	if err != nil {
		return err
	}
	v, err := NewView(e, s.cfg.NowFunc())
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, v)
	return nil
}

// get returns the endpoint named by the request's path, or a 404 problem.
func (s *Service) get(r *http.Request) (*Endpoint, error) {
	e, err := s.store.Get(r.Context(), r.PathValue("surveyId"), r.PathValue("webhookId"))
	if errors.Is(err, store.ErrNotFound) {
		return nil, webhookNotFound()
	}
	return e, err
}

func webhookNotFound() *httpapi.Problem {
	return httpapi.NotFound("webhook_not_found", "no such webhook")
}

type updateRequest struct {
	URL             *string  `json:"url"`
	Events          []string `json:"events"`
	Description     *string  `json:"description"`
	Disabled        *bool    `json:"disabled"`
	SignatureScheme *string  `json:"signatureScheme"`
	// RateLimit: left out, unchanged; null, no limit.
	RateLimit rateLimitField `json:"rateLimit"`
	Ordering  *string        `json:"ordering"`
}

// updatedView is the answer to a PATCH. One that switched the scheme rotated the secret: it
// shows the new v1 secret (a v1a endpoint's View carries its new public key) and when the old
// secret, of the old scheme, stops signing.
type updatedView struct {
	View
	Secret                  string     `json:"secret,omitempty"`
	PreviousSecretExpiresAt *time.Time `json:"previousSecretExpiresAt,omitempty"`
}

func (s *Service) handleUpdate(w http.ResponseWriter, r *http.Request) error {
	var req updateRequest
	if err := httpapi.DecodeJSON(w, r, 0, &req); err != nil {
		return err
	}
	var errs []httpapi.FieldError
	p := Patch{URL: req.URL, Description: req.Description, Disabled: req.Disabled, SignatureScheme: req.SignatureScheme,
		Ordering: req.Ordering}
	if req.URL != nil {
		if fe := s.checkURL(r, *req.URL); fe != nil {
			errs = append(errs, *fe)
		}
	}
	if req.Events != nil {
		evs, msg := NormalizeEvents(req.Events)
		if msg != "" {
			errs = append(errs, httpapi.FieldError{Field: "events", Message: msg})
		}
		p.Events = evs
	}
	if req.Description != nil {
		if fe := checkDescription(*req.Description); fe != nil {
			errs = append(errs, *fe)
		}
	}
	if req.SignatureScheme != nil {
		if fe := checkScheme(*req.SignatureScheme); fe != nil {
			errs = append(errs, *fe)
		}
	}
	if req.RateLimit.Set {
		limit, fe := checkRateLimit(req.RateLimit.Raw)
		if fe != nil {
			errs = append(errs, *fe)
		}
		p.RateLimit = &limit
	}
	if req.Ordering != nil {
		if fe := checkOrdering(*req.Ordering); fe != nil {
			errs = append(errs, *fe)
		}
	}
	if len(errs) > 0 {
		return httpapi.Validation(errs...)
	}
	now := s.cfg.NowFunc().UTC()
	p.PreviousUntil = store.FromMicros(store.Micros(now.Add(s.cfg.RotationGrace)))
	e, switched, disabledEvent, err := s.store.Update(r.Context(), r.PathValue("surveyId"), r.PathValue("webhookId"), p, now)
	if errors.Is(err, store.ErrNotFound) {
		return webhookNotFound()
	}
	if err != nil {
		return err
	}
	e.UpdatedAt = store.FromMicros(store.Micros(now))
	if !e.DisabledAt.IsZero() {
		e.DisabledAt = store.FromMicros(store.Micros(e.DisabledAt))
	}
	if req.Disabled != nil {
		s.cfg.Logger.InfoContext(r.Context(), "webhook updated", "webhook_id", e.ID, "survey_id", e.SurveyID,
			"disabled", e.Disabled, "by", principalID(r))
	}
	if disabledEvent != "" {
		s.cfg.Metrics.OperationalEvents.WithLabelValues(events.TypeWebhookDisabled).Inc()
		s.cfg.Logger.InfoContext(r.Context(), "operational event written", "type", events.TypeWebhookDisabled,
			"event_id", disabledEvent, "survey_id", e.SurveyID, "webhook_id", e.ID)
	}
	if req.RateLimit.Set {
		s.cfg.Logger.InfoContext(r.Context(), "webhook rate limit set", "webhook_id", e.ID, "survey_id", e.SurveyID,
			"rate_limit", e.RateLimit, "by", principalID(r))
	}
	if req.Ordering != nil {
		s.cfg.Logger.InfoContext(r.Context(), "webhook ordering set", "webhook_id", e.ID, "survey_id", e.SurveyID,
			"ordering", e.Ordering, "by", principalID(r))
	}
	v, err := NewView(e, now)
	if err != nil {
		return err
	}
	out := updatedView{View: v}
	if switched {
		s.cfg.Logger.InfoContext(r.Context(), "webhook signature scheme switched", "webhook_id", e.ID,
			"survey_id", e.SurveyID, "signature_scheme", e.SignatureScheme, "previous_until", p.PreviousUntil,
			"by", principalID(r))
		out.Secret, out.PreviousSecretExpiresAt = shownSecret(e), &p.PreviousUntil
		w.Header().Set("Cache-Control", "no-store")
	}
	httpapi.WriteJSON(w, http.StatusOK, out)
	return nil
}

func (s *Service) handleDelete(w http.ResponseWriter, r *http.Request) error {
	err := s.store.Delete(r.Context(), r.PathValue("surveyId"), r.PathValue("webhookId"))
	if errors.Is(err, store.ErrNotFound) {
		return webhookNotFound()
	}
	if err != nil {
		return err
	}
	s.cfg.Logger.InfoContext(r.Context(), "webhook deleted", "webhook_id", r.PathValue("webhookId"),
		"survey_id", r.PathValue("surveyId"), "by", principalID(r))
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// rotateResponse shows the new v1 secret, or the public key of the new v1a signing key.
type rotateResponse struct {
	Secret    string `json:"secret,omitempty"`
	PublicKey string `json:"publicKey,omitempty"`
	// PreviousSecretExpiresAt is when the rotated-out secret stops signing.
	PreviousSecretExpiresAt time.Time `json:"previousSecretExpiresAt"`
}

func (s *Service) handleRotate(w http.ResponseWriter, r *http.Request) error {
	now := s.cfg.NowFunc().UTC()
	until := store.FromMicros(store.Micros(now.Add(s.cfg.RotationGrace)))
	e, err := s.store.RotateSecret(r.Context(), r.PathValue("surveyId"), r.PathValue("webhookId"), until, now)
	if errors.Is(err, store.ErrNotFound) {
		return webhookNotFound()
	}
	if err != nil {
		return err
	}
	pub, err := e.PublicKey()
	if err != nil {
		return fmt.Errorf("webhook %s: %w", e.ID, err)
	}
	s.cfg.Logger.InfoContext(r.Context(), "webhook secret rotated", "webhook_id", e.ID, "survey_id", e.SurveyID,
		"signature_scheme", e.SignatureScheme, "previous_until", until, "by", principalID(r))
	w.Header().Set("Cache-Control", "no-store")
	httpapi.WriteJSON(w, http.StatusOK, rotateResponse{Secret: shownSecret(e), PublicKey: pub, PreviousSecretExpiresAt: until})
	return nil
}

// testResponse is the outcome of a test send's attempt.
type testResponse struct {
	DeliveryID   string `json:"deliveryId"`
	EventID      string `json:"eventId"`
	Delivered    bool   `json:"delivered"`
	StatusCode   *int   `json:"statusCode"`
	DurationMS   int64  `json:"durationMs"`
	Error        string `json:"error"`
	Detail       string `json:"detail,omitempty"`
	ResponseBody string `json:"responseBody"`
}

func (s *Service) handleTest(w http.ResponseWriter, r *http.Request) error {
	e, err := s.get(r)
	if err != nil {
		return err
	}
	out, err := s.SendTest(r.Context(), e)
	if err != nil {
		return err
	}
	res := out.Result
	resp := testResponse{
		DeliveryID:   out.DeliveryID,
		EventID:      out.EventID,
		Delivered:    res.Delivered,
		DurationMS:   res.Duration.Milliseconds(),
		Error:        string(res.Code),
		Detail:       testDetail(e.URL, &res),
		ResponseBody: delivery.ResponseBodyText(res.ResponseBody),
	}
	if res.StatusCode != 0 {
		resp.StatusCode = &res.StatusCode
	}
	httpapi.WriteJSON(w, http.StatusOK, resp)
	return nil
}

// testDetail is a test send's detail for the survey's staff. A host that is not public, or
// that did not resolve, gets the registration's one message (webhook.HostRefusal): the
// attempt's own error names the address dialled and, for lookups, the DNS server, which is
// what a test send must not tell about the service's network. Other failures get the attempt
// log's description (webhook.Result.Reason: "connection refused", never the address dialled).
// Operators see the full error in the log.
func testDetail(rawURL string, res *webhook.Result) string {
	var dnsErr *net.DNSError
	if res.Code == webhook.CodeBlockedAddress || res.Code == webhook.CodeDNS || errors.As(res.Err, &dnsErr) {
		host := rawURL
		if u, err := url.Parse(rawURL); err == nil {
			host = u.Hostname()
		}
		return webhook.HostRefusal(host)
	}
	if res.Reason != "" {
		return res.Reason
	}
	return res.Detail()
}

// checkURL applies the registration rules to a URL, as a field error.
func (s *Service) checkURL(r *http.Request, rawURL string) *httpapi.FieldError {
	if rawURL == "" {
		return &httpapi.FieldError{Field: "url", Message: "is required"}
	}
	if err := s.ValidateURL(r.Context(), rawURL); err != nil {
		return &httpapi.FieldError{Field: "url", Message: err.Error()}
	}
	return nil
}

func checkDescription(d string) *httpapi.FieldError {
	if !utf8.ValidString(d) {
		return &httpapi.FieldError{Field: "description", Message: "must be valid UTF-8"}
	}
	if utf8.RuneCountInString(d) > maxDescription {
		return &httpapi.FieldError{Field: "description", Message: "must be at most 1000 characters"}
	}
	return nil
}

func principalID(r *http.Request) string {
	if p := httpapi.PrincipalFrom(r.Context()); p != nil {
		return p.UserID
	}
	return ""
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
