package httpapi

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"
)

// Policy says who may call a route. Every route is registered with one, and the router
// enforces it before the handler runs, so no route can forget access control.
type Policy int

// The policies. Survey-scoped policies read the {surveyId} path value.
const (
	// Public routes need no credentials (sign-in, health, create-user with a signed JWT).
	Public Policy = iota + 1
	// Global routes are for any global account (admin or staff); handlers scope what they
	// return with Principal.ManagedSurveys or CanManageSurvey.
	Global
	// Admin routes are for admins only.
	Admin
	// SurveyStaff routes are for admins and for staff assigned to {surveyId}; others with a
	// global account get 404, as if the survey did not exist.
	SurveyStaff
	// SurveyRespondent routes are for respondents of {surveyId}; respondents of other surveys
	// get 404.
	SurveyRespondent
)

func (p Policy) String() string {
	switch p {
	case Public:
		return "public"
	case Global:
		return "global"
	case Admin:
		return "admin"
	case SurveyStaff:
		return "survey-staff"
	case SurveyRespondent:
		return "survey-respondent"
	}
	return fmt.Sprintf("policy(%d)", int(p))
}

// HandlerFunc is a handler that returns its error for the router to write as a problem.
type HandlerFunc func(w http.ResponseWriter, r *http.Request) error

// Route is one registered route, for tests that walk them all.
type Route struct {
	Pattern string
	Policy  Policy
}

// Router is an http.ServeMux whose routes all carry a Policy.
type Router struct {
	mux    *http.ServeMux
	auth   Authenticator
	logger *slog.Logger
	routes []Route
}

// NewRouter returns a router that authenticates with auth (nil: only Public routes work).
func NewRouter(auth Authenticator, logger *slog.Logger) *Router {
	return &Router{mux: http.NewServeMux(), auth: auth, logger: logger}
}

// Routes lists every route registered so far.
func (rt *Router) Routes() []Route { return append([]Route(nil), rt.routes...) }

// Handle registers h at pattern (a ServeMux pattern with a method, e.g. "POST /api/signin")
// behind policy.
func (rt *Router) Handle(pattern string, policy Policy, h HandlerFunc) {
	if !strings.Contains(pattern, " ") {
		panic("httpapi: pattern without method: " + pattern)
	}
	if (policy == SurveyStaff || policy == SurveyRespondent) && !strings.Contains(pattern, "{surveyId}") {
		panic("httpapi: survey policy on a route without {surveyId}: " + pattern)
	}
	rt.routes = append(rt.routes, Route{Pattern: pattern, Policy: policy})
	wildcards := wildcardNames(pattern)
	rt.mux.Handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Text inputs are checked before credentials are: the answer to a NUL is the same 400
		// for everyone, and no store sees one.
		if err := checkRequestText(r, wildcards); err != nil {
			WriteError(w, r, rt.logger, err)
			return
		}
		r, err := rt.authorize(r, policy)
		if err != nil {
			WriteError(w, r, rt.logger, err)
			return
		}
		if err := h(w, r); err != nil {
			WriteError(w, r, rt.logger, err)
		}
	}))
}

// HandleHTTP registers a plain http.Handler (static files, metrics) behind policy.
func (rt *Router) HandleHTTP(pattern string, policy Policy, h http.Handler) {
	rt.Handle(pattern, policy, func(w http.ResponseWriter, r *http.Request) error {
		h.ServeHTTP(w, r)
		return nil
	})
}

// authorize enforces policy and returns the request with its principal in the context.
func (rt *Router) authorize(r *http.Request, policy Policy) (*http.Request, error) {
	if policy == Public {
		return r, nil
	}
	if rt.auth == nil {
		return r, Unauthorized("unauthenticated", "credentials are required")
	}
	p, err := rt.auth.Authenticate(r.Context(), r)
	if err != nil {
		return r, err
	}
	if p == nil {
		return r, Unauthorized("unauthenticated", "send an access token in X-Auth-Token")
	}
	return r.WithContext(WithPrincipal(r.Context(), p)), allowed(p, policy, r.PathValue("surveyId"))
}

func allowed(p *Principal, policy Policy, surveyID string) error {
	switch policy {
	case Global:
		if p.Kind != KindGlobal || !(p.HasRole(RoleAdmin) || p.HasRole(RoleStaff)) {
			return Forbidden("forbidden", "this route is for admin and staff accounts")
		}
	case Admin:
		if !p.IsAdmin() {
			return Forbidden("forbidden", "this route is for admins")
		}
	case SurveyStaff:
		if p.Kind != KindGlobal || !(p.HasRole(RoleAdmin) || p.HasRole(RoleStaff)) {
			return Forbidden("forbidden", "this route is for admin and staff accounts")
		}
		if !p.CanManageSurvey(surveyID) {
			return NotFound("survey_not_found", "no such survey")
		}
	case SurveyRespondent:
		if p.Kind != KindRespondent {
			return Forbidden("forbidden", "this route is for survey respondents")
		}
		if p.SurveyID != surveyID {
			return NotFound("survey_not_found", "no such survey")
		}
	default:
		return fmt.Errorf("route with unknown policy %v", policy)
	}
	return nil
}

// StandardMethod reports whether method is one of RFC 9110's methods or PATCH (RFC 5789):
// the only methods the router looks at, and the only ones that become metric labels.
func StandardMethod(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}

// ServeHTTP dispatches to the registered routes; unknown paths get a problem+json 404 and
// known paths with another method a 405. A method that is not a standard one is answered 501,
// as RFC 9110 (section 15.6.2) has servers answer methods they do not recognise.
func (rt *Router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !StandardMethod(r.Method) {
		WriteError(w, r, rt.logger, NewProblem(http.StatusNotImplemented, "method_not_implemented",
			"the method is not one this server implements"))
		return
	}
	h, pattern := rt.mux.Handler(r)
	if pattern == "" {
		// ServeMux answers 404/405 in plain text; answer as problem+json instead, keeping
		// its Allow header.
		rec := &headerOnly{header: http.Header{}}
		h.ServeHTTP(rec, r)
		if allow := rec.header.Get("Allow"); allow != "" {
			w.Header().Set("Allow", allow)
			WriteError(w, r, rt.logger, NewProblem(http.StatusMethodNotAllowed, "method_not_allowed", "allowed: "+allow))
			return
		}
		WriteError(w, r, rt.logger, NotFound("route_not_found", "no such route"))
		return
	}
	rt.mux.ServeHTTP(w, r)
}

// headerOnly captures what ServeMux's own 404/405 handlers set.
type headerOnly struct {
	header http.Header
}

func (h *headerOnly) Header() http.Header         { return h.header }
func (h *headerOnly) Write(b []byte) (int, error) { return len(b), nil }
func (h *headerOnly) WriteHeader(int)             {}
