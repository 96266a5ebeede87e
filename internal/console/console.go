// Package console is the operators' web console at /console/: sign in with a global account,
// list deliveries with filters, read an attempt log, replay one delivery or a range; its first
// page also lists the disabled webhooks, with why and when, and re-enables one.
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
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dispatch24/dispatch24/internal/httpapi"
	"github.com/dispatch24/dispatch24/pkg/client"
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
	// api is the typed client of the API, whose requests cfg.API serves in-process.
	api *client.Client
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
		"percent": func(part, total int64) string {
			if total == 0 {
				return "0"
			}
			return fmt.Sprintf("%.2f", float64(part)*100/float64(total))
		},
		"minus": func(a int64, bs ...int64) int64 {
			for _, b := range bs {
				a -= b
			}
			return a
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
	api, err := client.New("http://console.internal", client.WithHTTPClient(&http.Client{Transport: inProcess{cfg.API}}))
	if err != nil {
		return nil, err
	}
	c := &Console{cfg: cfg, pages: map[string]*template.Template{}, api: api}
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
	rt.Handle("GET /{$}", httpapi.Public, func(w http.ResponseWriter, r *http.Request) error {
		http.Redirect(w, r, "/console/", http.StatusSeeOther)
		return nil
	})
	rt.Handle("GET /console/{$}", httpapi.Public, c.deliveries)
	rt.Handle("GET /console/signin", httpapi.Public, c.signinForm)
	rt.Handle("POST /console/signin", httpapi.Public, c.signin)
	rt.Handle("POST /console/signout", httpapi.Public, c.signout)
	rt.Handle("POST /console/webhooks/{surveyId}/{webhookId}/enable", httpapi.Public, c.enableWebhook)
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

// inProcess is the console's transport: it serves the client's requests with the API's
// handler in this process, as if they came from the browser's address (so per-address limits
// such as failed sign-ins still apply to the browser).
type inProcess struct{ api http.Handler }

type peerKey struct{}

// withPeer returns the context for the API calls made for browser request r.
func withPeer(r *http.Request) context.Context {
	return context.WithValue(r.Context(), peerKey{}, r.RemoteAddr)
}

func (t inProcess) RoundTrip(req *http.Request) (*http.Response, error) {
	in := req.Clone(req.Context())
	if peer, ok := req.Context().Value(peerKey{}).(string); ok {
		in.RemoteAddr = peer
	}
	rec := &recorder{header: http.Header{}, status: http.StatusOK}
	t.api.ServeHTTP(rec, in)
	return &http.Response{
		Status: fmt.Sprintf("%d %s", rec.status, http.StatusText(rec.status)), StatusCode: rec.status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: rec.header, Body: io.NopCloser(bytes.NewReader(rec.body.Bytes())),
		ContentLength: int64(rec.body.Len()), Request: req,
	}, nil
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
	access, err := c.api.Refresh(withPeer(r), ck.Value)
	if err != nil || access == "" {
		c.clearCookie(w)
		http.Redirect(w, r, "/console/signin?expired=1", http.StatusSeeOther)
		return "", false
	}
	return access, true
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
	ctx := withPeer(r)
	out, err := c.api.SignIn(ctx, r.PostFormValue("email"), r.PostFormValue("password"))
	if err != nil {
		status, msg, retryAfter := signInRefusal(err)
		if retryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int((retryAfter+time.Second-1)/time.Second)))
		}
		return c.render(w, status, "signin", page{Title: "Sign in", Error: msg})
	}
	// Only global accounts may use the console: check with an access token.
	access, err := c.api.Refresh(ctx, out.RefreshToken)
	if err != nil {
		return c.render(w, http.StatusUnauthorized, "signin", page{Title: "Sign in", Error: "Sign-in failed."})
	}
	if _, err := c.api.WithToken(access).ListDeliveries(ctx, client.DeliveryFilter{Limit: 1}); err != nil {
		_ = c.api.SignOut(ctx, out.RefreshToken)
		return c.render(w, http.StatusForbidden, "signin", page{Title: "Sign in", Error: "This account cannot use the console."})
	}
	c.setCookie(w, out.RefreshToken)
	http.Redirect(w, r, "/console/", http.StatusSeeOther)
	return nil
}

// signInRefusal is the status and message of the sign-in page for the API's refusal err: a
// 503 (the password-hashing bound is full) and a 429 (too many failed sign-ins) each say when
// to try again from Retry-After, which the page passes on; anything else is wrong credentials.
func signInRefusal(err error) (status int, msg string, retryAfter time.Duration) {
	var ce *client.Error
	if errors.As(err, &ce) {
		switch ce.StatusCode {
		case http.StatusServiceUnavailable:
			return ce.StatusCode, "The server is busy checking other sign-ins. Try again " + retryIn(ce.RetryAfter) + ".", ce.RetryAfter
		case http.StatusTooManyRequests:
			return ce.StatusCode, "Too many failed sign-ins. Try again " + retryIn(ce.RetryAfter) + ".", ce.RetryAfter
		}
	}
	return http.StatusUnauthorized, "Wrong e-mail or password.", 0
}

// retryIn words a Retry-After: "in 1 second", "in 7 seconds", "in 15 minutes", or "later"
// when the API gave none.
func retryIn(d time.Duration) string {
	n, unit := int((d+time.Second-1)/time.Second), "second"
	if n <= 0 {
		return "later"
	}
	if n >= 120 {
		n, unit = (n+59)/60, "minute"
	}
	if n != 1 {
		unit += "s"
	}
	return fmt.Sprintf("in %d %s", n, unit)
}

func (c *Console) signout(w http.ResponseWriter, r *http.Request) error {
	if err := c.form(w, r); err != nil {
		return err
	}
	if ck, err := r.Cookie(cookieName); err == nil && ck.Value != "" {
		_ = c.api.SignOut(withPeer(r), ck.Value)
	}
	c.clearCookie(w)
	http.Redirect(w, r, "/console/signin", http.StatusSeeOther)
	return nil
}

var filterKeys = []string{"surveyId", "webhookId", "status", "type", "since", "until"}

func (c *Console) deliveries(w http.ResponseWriter, r *http.Request) error {
	token, ok := c.session(w, r)
	if !ok {
		return nil
	}
	q := r.URL.Query()
	filters := url.Values{}
	for _, k := range filterKeys {
		if v := strings.TrimSpace(q.Get(k)); v != "" {
			filters.Set(k, v)
		}
	}
	p := page{Title: "Deliveries", User: true, Flash: q.Get("flash")}
	f := client.DeliveryFilter{SurveyID: filters.Get("surveyId"), WebhookID: filters.Get("webhookId"),
		Type: filters.Get("type"), Limit: 50, Cursor: strings.TrimSpace(q.Get("cursor"))}
	if s := filters.Get("status"); s != "" {
		f.Status = []string{s}
	}
	var errs []string
	now := time.Now()
	var err error
	if f.Since, err = client.ParseTime(filters.Get("since"), now); err != nil {
		errs = append(errs, "Since: "+err.Error())
	}
	if f.Until, err = client.ParseTime(filters.Get("until"), now); err != nil {
		errs = append(errs, "Until: "+err.Error())
	}
	var list *client.DeliveryPage
	if len(errs) == 0 {
		if list, err = c.api.WithToken(token).ListDeliveries(withPeer(r), f); err != nil {
			errs = append(errs, problemText(err))
		}
	}
	if list == nil {
		list = &client.DeliveryPage{}
	}
	disabled, err := c.disabledWebhooks(withPeer(r), token)
	if err != nil {
		errs = append(errs, problemText(err))
	}
	p.Error = strings.Join(errs, " ")
	p.Data = map[string]any{"Items": list.Items, "Next": list.NextCursor, "F": filters, "Disabled": disabled}
	return c.render(w, http.StatusOK, "deliveries", p)
}

// disabledWebhooks lists the disabled webhooks of every survey, the most recently disabled
// first, through the API: the surveys (global accounts only, as the console is), then each
// survey's webhooks. The API has no cross-survey webhook listing; the calls are in-process,
// one per survey.
func (c *Console) disabledWebhooks(ctx context.Context, token string) ([]client.Webhook, error) {
	api := c.api.WithToken(token)
	var surveys struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
	}
	if err := api.Do(ctx, http.MethodGet, "/api/admin/surveys", nil, nil, &surveys); err != nil {
		return nil, err
	}
	var out []client.Webhook
	for _, s := range surveys.Items {
		list, err := api.ListWebhooks(ctx, s.ID)
		if err != nil {
			return out, err
		}
		for _, w := range list {
			if w.Disabled {
				out = append(out, w)
			}
		}
	}
	slices.SortFunc(out, func(a, b client.Webhook) int {
		if a.DisabledAt == nil || b.DisabledAt == nil {
			return strings.Compare(a.ID, b.ID)
		}
		return b.DisabledAt.Compare(*a.DisabledAt)
	})
	return out, nil
}

// enableWebhook re-enables a disabled webhook: a PATCH disabled=false through the API
// (internal/endpoint), which also resets its failure counters.
func (c *Console) enableWebhook(w http.ResponseWriter, r *http.Request) error {
	if err := c.form(w, r); err != nil {
		return err
	}
	token, ok := c.session(w, r)
	if !ok {
		return nil
	}
	id := r.PathValue("webhookId")
	no := false
	flash := "Webhook " + id + " enabled."
	if _, err := c.api.WithToken(token).UpdateWebhook(withPeer(r), r.PathValue("surveyId"), id, client.WebhookPatch{Disabled: &no}); err != nil {
		flash = "Enabling " + id + " refused: " + problemText(err)
	}
	http.Redirect(w, r, "/console/?flash="+url.QueryEscape(flash), http.StatusSeeOther)
	return nil
}

func (c *Console) delivery(w http.ResponseWriter, r *http.Request) error {
	token, ok := c.session(w, r)
	if !ok {
		return nil
	}
	d, err := c.api.WithToken(token).GetDelivery(withPeer(r), r.PathValue("id"))
	if err != nil {
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
	out, err := c.api.WithToken(token).ReplayDelivery(withPeer(r), id)
	if err != nil {
		http.Redirect(w, r, "/console/deliveries/"+url.PathEscape(id)+"?flash="+url.QueryEscape("Replay refused: "+problemText(err)), http.StatusSeeOther)
		return nil
	}
	http.Redirect(w, r, "/console/deliveries/"+url.PathEscape(out.DeliveryID)+"?flash="+url.QueryEscape("Replay of "+id+" queued."), http.StatusSeeOther)
	return nil
}

// replayFormKeys are the replay form's text fields.
var replayFormKeys = []string{"surveyId", "webhookId", "type", "since", "until"}

func (c *Console) replayForm(w http.ResponseWriter, r *http.Request) error {
	if _, ok := c.session(w, r); !ok {
		return nil
	}
	data := map[string]string{}
	for _, k := range replayFormKeys {
		data[k] = r.URL.Query().Get(k)
	}
	return c.render(w, http.StatusOK, "replay_new", page{Title: "Replay a range", User: true, Data: data})
}

// replayRange starts a range replay (or a dry run). since and until take what the command
// line takes: RFC 3339 or a duration back from now; until defaults to now.
func (c *Console) replayRange(w http.ResponseWriter, r *http.Request) error {
	if err := c.form(w, r); err != nil {
		return err
	}
	token, ok := c.session(w, r)
	if !ok {
		return nil
	}
	f := r.PostForm
	data := map[string]string{}
	for _, k := range replayFormKeys {
		data[k] = strings.TrimSpace(f.Get(k))
	}
	refuse := func(msg string) error {
		return c.render(w, http.StatusBadRequest, "replay_new", page{Title: "Replay a range", User: true, Error: msg, Data: data})
	}
	req := client.ReplayRange{SurveyID: data["surveyId"], WebhookID: data["webhookId"], Type: data["type"],
		Status: f["status"], DryRun: f.Get("dryRun") != ""}
	now := time.Now()
	var err error
	switch req.Since, err = client.ParseTime(data["since"], now); {
	case err != nil:
		return refuse("Since: " + err.Error())
	case req.Since.IsZero():
		return refuse("Since is required: an RFC 3339 time or a duration back from now such as 24h.")
	}
	if req.Until, err = client.ParseTime(data["until"], now); err != nil {
		return refuse("Until: " + err.Error())
	}
	if req.Until.IsZero() {
		req.Until = now.UTC()
	}
	out, err := c.api.WithToken(token).StartReplay(withPeer(r), req)
	if err != nil {
		return refuse(problemText(err))
	}
	if req.DryRun || out.ReplayID == "" {
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
	rp, err := c.api.WithToken(token).GetReplay(withPeer(r), r.PathValue("id"))
	if err != nil {
		return c.render(w, http.StatusNotFound, "replay", page{Title: "Replay", User: true, Error: problemText(err)})
	}
	p := page{Title: "Replay " + rp.ID, User: true, Data: rp}
	if rp.Status == client.ReplayRunning {
		p.Refresh = 2
	}
	return c.render(w, http.StatusOK, "replay", p)
}

// problemText is what a page says about an API refusal: its detail and bad fields.
func problemText(err error) string {
	var p *client.Error
	if errors.As(err, &p) {
		msg := p.Detail
		if msg == "" {
			msg = p.Title
		}
		if msg == "" {
			msg = http.StatusText(p.StatusCode)
		}
		for _, fe := range p.Errors {
			msg += "; " + fe.Field + ": " + fe.Message
		}
		return msg
	}
	return "the request failed"
}
