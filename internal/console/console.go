// Package console is the operators' web console at /console/: sign in with a global account,
// list deliveries with filters, read an attempt log, replay one delivery or a range.
//
// It is server-rendered HTML with no build step, and it is a client of the JSON API: every
// page calls the API's own routes in-process with the signed-in account's access token, so the
// console can never show or do more than the API allows that account. The session is the
// refresh token in an HttpOnly, SameSite=Strict cookie scoped to /console/; each page trades it
// for an access token. State-changing forms are POSTs that must come from the console's own
// origin (SameSite plus an Origin check).
package console

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/dispatch24/dispatch24/internal/httpapi"
)

//go:embed templates/*.html
var templateFS embed.FS

const cookieName = "d24_console"

// Config configures the console.
type Config struct {
	// API is the JSON API's handler (the router), called in-process.
	API http.Handler
	// SecureCookies marks the session cookie Secure (when PUBLIC_URL is https).
	SecureCookies bool
	Logger        *slog.Logger
}

// Console serves the pages.
type Console struct {
	cfg   Config
	pages map[string]*template.Template
}

// New parses the templates.
func New(cfg Config) (*Console, error) {
	funcs := template.FuncMap{
		"time": func(t *time.Time) string {
			if t == nil || t.IsZero() {
				return "–"
			}
			return t.UTC().Format("2006-01-02 15:04:05Z")
		},
		"code": func(c *int) string {
			if c == nil {
				return "–"
			}
			return fmt.Sprint(*c)
		},
		"statuses": func() []string { return []string{"pending", "succeeded", "failed", "skipped"} },
		"percent": func(done, total int) int {
			if total == 0 {
				return 100
			}
			return done * 100 / total
		},
		"query": func(v url.Values, key, value string) string {
			q := url.Values{}
			for k, vs := range v {
				q[k] = vs
			}
			q.Set(key, value)
			return q.Encode()
		},
	}
	c := &Console{cfg: cfg, pages: map[string]*template.Template{}}
	for _, name := range []string{"signin", "deliveries", "delivery", "replay_new", "replay"} {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("console template %s: %w", name, err)
		}
		c.pages[name] = t
	}
	return c, nil
}

// Register adds the console's routes. They are Public at the router: the console checks its
// own session, and every API call it makes is checked again by the API's policies.
func (c *Console) Register(rt *httpapi.Router) {
	rt.Handle("GET /console/{$}", httpapi.Public, c.deliveries)
	rt.Handle("GET /console/signin", httpapi.Public, c.signinForm)
	rt.Handle("POST /console/signin", httpapi.Public, c.signin)
	rt.Handle("POST /console/signout", httpapi.Public, c.signout)
	rt.Handle("GET /console/deliveries/{id}", httpapi.Public, c.delivery)
	rt.Handle("POST /console/deliveries/{id}/replay", httpapi.Public, c.replayOne)
	rt.Handle("GET /console/replays/new", httpapi.Public, c.replayForm)
	rt.Handle("POST /console/replays", httpapi.Public, c.replayRange)
	rt.Handle("GET /console/replays/{id}", httpapi.Public, c.replayProgress)
}

// page is what every template gets.
type page struct {
	Title   string
	User    bool
	Flash   string
	Error   string
	Refresh int
	Data    any
}

func (c *Console) render(w http.ResponseWriter, status int, name string, p page) error {
	var buf bytes.Buffer
	if err := c.pages[name].Execute(&buf, p); err != nil {
		return fmt.Errorf("rendering %s: %w", name, err)
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'")
	w.WriteHeader(status)
	_, err := w.Write(buf.Bytes())
	return err
}

// call runs an API route in-process and decodes its JSON answer into out. A problem answer
// comes back as *httpapi.Problem.
func (c *Console) call(r *http.Request, method, path, token string, in, out any) error {
	var body io.Reader = http.NoBody
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(r.Context(), method, path, body)
	if err != nil {
		return err
	}
	req.RemoteAddr = r.RemoteAddr
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	rec := &recorder{header: http.Header{}, status: http.StatusOK}
	c.cfg.API.ServeHTTP(rec, req)
	if rec.status >= 400 {
		p := &httpapi.Problem{Status: rec.status}
		if err := json.Unmarshal(rec.body.Bytes(), p); err != nil || p.Code == "" {
			p = httpapi.NewProblem(rec.status, "api_error", http.StatusText(rec.status))
		}
		return p
	}
	if out != nil && rec.body.Len() > 0 {
		if err := json.Unmarshal(rec.body.Bytes(), out); err != nil {
			return fmt.Errorf("decoding %s %s: %w", method, path, err)
		}
	}
	return nil
}

type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
	wrote  bool
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) WriteHeader(code int) {
	if !r.wrote {
		r.status, r.wrote = code, true
	}
}
func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.body.Write(b)
}

// session trades the cookie's refresh token for an access token. ok is false (and the
// browser has been sent to the sign-in page) when there is no valid session.
func (c *Console) session(w http.ResponseWriter, r *http.Request) (token string, ok bool) {
	ck, err := r.Cookie(cookieName)
	if err != nil || ck.Value == "" {
		http.Redirect(w, r, "/console/signin", http.StatusSeeOther)
		return "", false
	}
	var out struct {
		AccessToken string `json:"accessToken"`
	}
	if err := c.call(r, http.MethodPost, "/api/refresh", ck.Value, nil, &out); err != nil || out.AccessToken == "" {
		c.clearCookie(w)
		http.Redirect(w, r, "/console/signin?expired=1", http.StatusSeeOther)
		return "", false
	}
	return out.AccessToken, true
}

func (c *Console) setCookie(w http.ResponseWriter, value string) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: value, Path: "/console/", HttpOnly: true,
		Secure: c.cfg.SecureCookies, SameSite: http.SameSiteStrictMode, MaxAge: 12 * 3600})
}

func (c *Console) clearCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/console/", HttpOnly: true,
		Secure: c.cfg.SecureCookies, SameSite: http.SameSiteStrictMode, MaxAge: -1})
}

// sameOrigin refuses cross-site form posts: a present Origin (or, failing that, Referer)
// must name this host.
func sameOrigin(r *http.Request) bool {
	src := r.Header.Get("Origin")
	if src == "" {
		src = r.Header.Get("Referer")
	}
	if src == "" || src == "null" {
		return src == "" // non-browser clients send neither
	}
	u, err := url.Parse(src)
	return err == nil && strings.EqualFold(u.Host, r.Host)
}

func (c *Console) form(w http.ResponseWriter, r *http.Request) error {
	if !sameOrigin(r) {
		return httpapi.Forbidden("cross_origin", "form posted from another origin")
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		return httpapi.BadRequest("bad_form", "could not read the form")
	}
	return nil
}

func (c *Console) signinForm(w http.ResponseWriter, r *http.Request) error {
	p := page{Title: "Sign in"}
	if r.URL.Query().Get("expired") != "" {
		p.Error = "Your session has ended. Sign in again."
	}
	return c.render(w, http.StatusOK, "signin", p)
}

func (c *Console) signin(w http.ResponseWriter, r *http.Request) error {
	if err := c.form(w, r); err != nil {
		return err
	}
	var out struct {
		RefreshToken string `json:"refreshToken"`
	}
	err := c.call(r, http.MethodPost, "/api/signin", "",
		map[string]string{"email": r.PostFormValue("email"), "password": r.PostFormValue("password")}, &out)
	if err != nil {
		msg := "Wrong e-mail or password."
		if p, ok := err.(*httpapi.Problem); ok && p.Status == http.StatusTooManyRequests {
			msg = "Too many failed attempts. Try again later."
		}
		return c.render(w, http.StatusUnauthorized, "signin", page{Title: "Sign in", Error: msg})
	}
	// Only global accounts may use the console: check with an access token.
	var acc struct {
		AccessToken string `json:"accessToken"`
	}
	if err := c.call(r, http.MethodPost, "/api/refresh", out.RefreshToken, nil, &acc); err != nil {
		return c.render(w, http.StatusUnauthorized, "signin", page{Title: "Sign in", Error: "Sign-in failed."})
	}
	if err := c.call(r, http.MethodGet, "/api/admin/deliveries?limit=1", acc.AccessToken, nil, nil); err != nil {
		_ = c.call(r, http.MethodPost, "/api/signout", out.RefreshToken, nil, nil)
		return c.render(w, http.StatusForbidden, "signin", page{Title: "Sign in", Error: "This account cannot use the console."})
	}
	c.setCookie(w, out.RefreshToken)
	http.Redirect(w, r, "/console/", http.StatusSeeOther)
	return nil
}

func (c *Console) signout(w http.ResponseWriter, r *http.Request) error {
	if err := c.form(w, r); err != nil {
		return err
	}
	if ck, err := r.Cookie(cookieName); err == nil && ck.Value != "" {
		_ = c.call(r, http.MethodPost, "/api/signout", ck.Value, nil, nil)
	}
	c.clearCookie(w)
	http.Redirect(w, r, "/console/signin", http.StatusSeeOther)
	return nil
}

// Delivery is the API's delivery view.
type Delivery struct {
	ID             string     `json:"id"`
	EventID        string     `json:"eventId"`
	Type           string     `json:"type"`
	SurveyID       string     `json:"surveyId"`
	WebhookID      string     `json:"webhookId"`
	URL            string     `json:"url"`
	Status         string     `json:"status"`
	Attempts       int        `json:"attempts"`
	LastStatusCode *int       `json:"lastStatusCode"`
	LastError      string     `json:"lastError"`
	NextAttemptAt  *time.Time `json:"nextAttemptAt"`
	CreatedAt      *time.Time `json:"createdAt"`
	UpdatedAt      *time.Time `json:"updatedAt"`
	ReplayOf       string     `json:"replayOf"`
	AttemptLog     []struct {
		N            int        `json:"n"`
		StartedAt    *time.Time `json:"startedAt"`
		DurationMs   int        `json:"durationMs"`
		StatusCode   *int       `json:"statusCode"`
		Error        string     `json:"error"`
		ResponseBody string     `json:"responseBody"`
	} `json:"attemptLog"`
}

var filterKeys = []string{"surveyId", "webhookId", "status", "type", "since", "until", "cursor"}

func (c *Console) deliveries(w http.ResponseWriter, r *http.Request) error {
	token, ok := c.session(w, r)
	if !ok {
		return nil
	}
	q := url.Values{}
	for _, k := range filterKeys {
		if v := strings.TrimSpace(r.URL.Query().Get(k)); v != "" {
			q.Set(k, v)
		}
	}
	q.Set("limit", "50")
	var out struct {
		Items      []Delivery `json:"items"`
		NextCursor string     `json:"nextCursor"`
	}
	p := page{Title: "Deliveries", User: true, Flash: r.URL.Query().Get("flash")}
	if err := c.call(r, http.MethodGet, "/api/admin/deliveries?"+q.Encode(), token, nil, &out); err != nil {
		p.Error = problemText(err)
	}
	filters := url.Values{}
	for _, k := range filterKeys[:6] {
		if v := q.Get(k); v != "" {
			filters.Set(k, v)
		}
	}
	p.Data = map[string]any{"Items": out.Items, "Next": out.NextCursor, "F": filters}
	return c.render(w, http.StatusOK, "deliveries", p)
}

func (c *Console) delivery(w http.ResponseWriter, r *http.Request) error {
	token, ok := c.session(w, r)
	if !ok {
		return nil
	}
	var d Delivery
	if err := c.call(r, http.MethodGet, "/api/admin/deliveries/"+url.PathEscape(r.PathValue("id")), token, nil, &d); err != nil {
		return c.render(w, http.StatusNotFound, "delivery", page{Title: "Delivery", User: true, Error: problemText(err)})
	}
	return c.render(w, http.StatusOK, "delivery", page{Title: "Delivery " + d.ID, User: true, Data: d,
		Flash: r.URL.Query().Get("flash")})
}

func (c *Console) replayOne(w http.ResponseWriter, r *http.Request) error {
	if err := c.form(w, r); err != nil {
		return err
	}
	token, ok := c.session(w, r)
	if !ok {
		return nil
	}
	id := r.PathValue("id")
	var out struct {
		DeliveryID string `json:"deliveryId"`
	}
	if err := c.call(r, http.MethodPost, "/api/admin/deliveries/"+url.PathEscape(id)+"/replay", token, struct{}{}, &out); err != nil {
		http.Redirect(w, r, "/console/deliveries/"+url.PathEscape(id)+"?flash="+url.QueryEscape("Replay refused: "+problemText(err)), http.StatusSeeOther)
		return nil
	}
	http.Redirect(w, r, "/console/deliveries/"+url.PathEscape(out.DeliveryID)+"?flash="+url.QueryEscape("Replay of "+id+" queued."), http.StatusSeeOther)
	return nil
}

func (c *Console) replayForm(w http.ResponseWriter, r *http.Request) error {
	if _, ok := c.session(w, r); !ok {
		return nil
	}
	q := r.URL.Query()
	return c.render(w, http.StatusOK, "replay_new", page{Title: "Replay a range", User: true, Data: map[string]string{
		"surveyId": q.Get("surveyId"), "webhookId": q.Get("webhookId"), "type": q.Get("type"),
		"since": q.Get("since"), "until": q.Get("until"),
	}})
}

func (c *Console) replayRange(w http.ResponseWriter, r *http.Request) error {
	if err := c.form(w, r); err != nil {
		return err
	}
	token, ok := c.session(w, r)
	if !ok {
		return nil
	}
	f := r.PostForm
	body := map[string]any{"since": f.Get("since"), "until": f.Get("until"), "dryRun": f.Get("dryRun") != ""}
	statuses := f["status"]
	if len(statuses) == 0 {
		statuses = []string{"failed"}
	}
	body["status"] = statuses
	for _, k := range []string{"surveyId", "webhookId", "type"} {
		if v := strings.TrimSpace(f.Get(k)); v != "" {
			body[k] = v
		}
	}
	var out struct {
		ReplayID string `json:"replayId"`
		Matched  int    `json:"matched"`
	}
	data := map[string]string{"surveyId": f.Get("surveyId"), "webhookId": f.Get("webhookId"), "type": f.Get("type"),
		"since": f.Get("since"), "until": f.Get("until")}
	if err := c.call(r, http.MethodPost, "/api/admin/deliveries/replay", token, body, &out); err != nil {
		return c.render(w, http.StatusBadRequest, "replay_new", page{Title: "Replay a range", User: true, Error: problemText(err), Data: data})
	}
	if body["dryRun"] == true || out.ReplayID == "" {
		return c.render(w, http.StatusOK, "replay_new", page{Title: "Replay a range", User: true,
			Flash: fmt.Sprintf("Dry run: %d deliveries match. Nothing was replayed.", out.Matched), Data: data})
	}
	http.Redirect(w, r, "/console/replays/"+url.PathEscape(out.ReplayID), http.StatusSeeOther)
	return nil
}

func (c *Console) replayProgress(w http.ResponseWriter, r *http.Request) error {
	token, ok := c.session(w, r)
	if !ok {
		return nil
	}
	var out struct {
		ID       string `json:"id"`
		Matched  int    `json:"matched"`
		Enqueued int    `json:"enqueued"`
		Done     int    `json:"done"`
		Status   string `json:"status"`
	}
	id := r.PathValue("id")
	if err := c.call(r, http.MethodGet, "/api/admin/replays/"+url.PathEscape(id), token, nil, &out); err != nil {
		return c.render(w, http.StatusNotFound, "replay", page{Title: "Replay", User: true, Error: problemText(err)})
	}
	if out.ID == "" {
		out.ID = id
	}
	p := page{Title: "Replay " + out.ID, User: true, Data: out}
	if out.Status == "running" {
		p.Refresh = 2
	}
	return c.render(w, http.StatusOK, "replay", p)
}

func problemText(err error) string {
	if p, ok := err.(*httpapi.Problem); ok {
		msg := p.Detail
		if msg == "" {
			msg = p.Title
		}
		for _, fe := range p.Errors {
			msg += "; " + fe.Field + ": " + fe.Message
		}
		return msg
	}
	return "the request failed"
}
