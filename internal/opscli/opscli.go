// Package opscli is the operators' command line: `dispatcher deliveries list|show` and
// `dispatcher replay`. It talks to the API (DISPATCH24_API_URL) with a personal access token
// (DISPATCH24_TOKEN), so it needs no database credentials, obeys the same access rules as the
// console, and works from any machine that reaches the API.
package opscli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// ErrUsage is returned for bad command lines; usage has been printed.
var ErrUsage = errors.New("usage error")

// Run runs one ops command. args start after the program name ("deliveries", "list", …).
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		usage(stderr)
		return ErrUsage
	}
	switch args[0] {
	case "deliveries":
		if len(args) < 2 {
			usage(stderr)
			return ErrUsage
		}
		switch args[1] {
		case "list":
			return list(ctx, args[2:], getenv, stdout, stderr)
		case "show":
			return show(ctx, args[2:], getenv, stdout, stderr)
		}
	case "replay":
		return replay(ctx, args[1:], getenv, stdout, stderr)
	}
	usage(stderr)
	return ErrUsage
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage:
  dispatcher deliveries list [--survey S] [--webhook W] [--status failed,…] [--type T] [--since T] [--until T] [--limit N] [--all] [--json]
  dispatcher deliveries show ID [--json]
  dispatcher replay --delivery ID
  dispatcher replay [--survey S] [--webhook W] [--status failed] [--type T] --since T --until T [--dry-run] [--no-wait]

Connection: --api-url or DISPATCH24_API_URL (default http://127.0.0.1:8080), and --token or
DISPATCH24_TOKEN: a personal access token (POST /api/admin/user/personal-access-tokens).
Times are RFC 3339 (2026-11-23T10:00:00Z) or durations back from now (24h).
`)
}

// client calls the API with a personal access token.
type client struct {
	base  string
	token string
	http  *http.Client
}

func newFlagSet(name string, stderr io.Writer) (*flag.FlagSet, *string, *string) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	apiURL := fs.String("api-url", "", "API base URL (env DISPATCH24_API_URL)")
	token := fs.String("token", "", "personal access token (env DISPATCH24_TOKEN)")
	return fs, apiURL, token
}

func newClient(apiURL, token string, getenv func(string) string) (*client, error) {
	if apiURL == "" {
		apiURL = getenv("DISPATCH24_API_URL")
	}
	if apiURL == "" {
		apiURL = "http://127.0.0.1:8080"
	}
	if token == "" {
		token = getenv("DISPATCH24_TOKEN")
	}
	if token == "" {
		return nil, errors.New("no token: set DISPATCH24_TOKEN or --token to a personal access token")
	}
	u, err := url.Parse(apiURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("API URL %q is not an http(s) URL", apiURL)
	}
	return &client{base: strings.TrimRight(apiURL, "/"), token: token, http: &http.Client{Timeout: 30 * time.Second}}, nil
}

// apiError is a problem+json answer.
type apiError struct {
	Status int    `json:"status"`
	Code   string `json:"code"`
	Detail string `json:"detail"`
	Errors []struct {
		Field   string `json:"field"`
		Message string `json:"message"`
	} `json:"errors"`
}

func (e *apiError) Error() string {
	msg := fmt.Sprintf("API answered %d %s", e.Status, e.Code)
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	for _, fe := range e.Errors {
		msg += fmt.Sprintf("; %s: %s", fe.Field, fe.Message)
	}
	return msg
}

func (c *client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("calling the API: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("reading the API's answer: %w", err)
	}
	if resp.StatusCode >= 400 {
		ae := &apiError{Status: resp.StatusCode}
		_ = json.Unmarshal(raw, ae)
		return ae
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("decoding the API's answer: %w", err)
		}
	}
	return nil
}

// parseTime accepts RFC 3339 or a duration back from now.
func parseTime(s string, now time.Time) (string, error) {
	if s == "" {
		return "", nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC().Format(time.RFC3339), nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d).UTC().Format(time.RFC3339), nil
	}
	return "", fmt.Errorf("%q is neither an RFC 3339 time nor a duration", s)
}

type delivery struct {
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
	CreatedAt      time.Time  `json:"createdAt"`
	UpdatedAt      time.Time  `json:"updatedAt"`
	ReplayOf       string     `json:"replayOf"`
	AttemptLog     []struct {
		N            int       `json:"n"`
		StartedAt    time.Time `json:"startedAt"`
		DurationMs   int       `json:"durationMs"`
		StatusCode   *int      `json:"statusCode"`
		Error        string    `json:"error"`
		ResponseBody string    `json:"responseBody"`
	} `json:"attemptLog"`
}

func list(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs, apiURL, token := newFlagSet("deliveries list", stderr)
	survey := fs.String("survey", "", "survey id")
	webhook := fs.String("webhook", "", "webhook id")
	status := fs.String("status", "", "statuses, comma separated: pending,succeeded,failed,skipped")
	typ := fs.String("type", "", "event type")
	since := fs.String("since", "", "created at or after (RFC 3339 or a duration back from now)")
	until := fs.String("until", "", "created before")
	limit := fs.Int("limit", 50, "rows per page (max 500)")
	all := fs.Bool("all", false, "follow every page")
	asJSON := fs.Bool("json", false, "print JSON lines")
	if err := fs.Parse(args); err != nil {
		return ErrUsage
	}
	c, err := newClient(*apiURL, *token, getenv)
	if err != nil {
		return err
	}
	now := time.Now()
	q := url.Values{}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	set("surveyId", *survey)
	set("webhookId", *webhook)
	set("status", *status)
	set("type", *typ)
	s, err := parseTime(*since, now)
	if err != nil {
		return fmt.Errorf("--since: %w", err)
	}
	u, err := parseTime(*until, now)
	if err != nil {
		return fmt.Errorf("--until: %w", err)
	}
	set("since", s)
	set("until", u)
	q.Set("limit", strconv.Itoa(*limit))

	var tw *tabwriter.Writer
	if !*asJSON {
		tw = tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSTATUS\tATTEMPTS\tLAST\tTYPE\tSURVEY\tWEBHOOK\tCREATED")
	}
	enc := json.NewEncoder(stdout)
	for {
		var page struct {
			Items      []delivery `json:"items"`
			NextCursor string     `json:"nextCursor"`
		}
		if err := c.do(ctx, http.MethodGet, "/api/admin/deliveries?"+q.Encode(), nil, &page); err != nil {
			return err
		}
		for _, d := range page.Items {
			if *asJSON {
				if err := enc.Encode(d); err != nil {
					return err
				}
				continue
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", d.ID, d.Status, d.Attempts, lastOutcome(d),
				d.Type, d.SurveyID, d.WebhookID, d.CreatedAt.Format(time.RFC3339))
		}
		if !*all || page.NextCursor == "" {
			break
		}
		q.Set("cursor", page.NextCursor)
	}
	if tw != nil {
		return tw.Flush()
	}
	return nil
}

func lastOutcome(d delivery) string {
	switch {
	case d.LastStatusCode != nil && d.LastError != "":
		return fmt.Sprintf("%d %s", *d.LastStatusCode, d.LastError)
	case d.LastStatusCode != nil:
		return strconv.Itoa(*d.LastStatusCode)
	case d.LastError != "":
		return d.LastError
	}
	return "-"
}

func show(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs, apiURL, token := newFlagSet("deliveries show", stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	// Allow the id before or after the flags.
	var id string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		id, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return ErrUsage
	}
	if id == "" && fs.NArg() == 1 {
		id = fs.Arg(0)
	}
	if id == "" {
		fmt.Fprintln(stderr, "usage: dispatcher deliveries show ID [--json]")
		return ErrUsage
	}
	c, err := newClient(*apiURL, *token, getenv)
	if err != nil {
		return err
	}
	var d delivery
	if err := c.do(ctx, http.MethodGet, "/api/admin/deliveries/"+url.PathEscape(id), nil, &d); err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(d)
	}
	fmt.Fprintf(stdout, "delivery  %s\nevent     %s (%s)\nsurvey    %s\nwebhook   %s %s\nstatus    %s after %d attempt(s)\n",
		d.ID, d.EventID, d.Type, d.SurveyID, d.WebhookID, d.URL, d.Status, d.Attempts)
	if d.NextAttemptAt != nil {
		fmt.Fprintf(stdout, "next      %s\n", d.NextAttemptAt.Format(time.RFC3339))
	}
	if d.ReplayOf != "" {
		fmt.Fprintf(stdout, "replay of %s\n", d.ReplayOf)
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nN\tSTARTED\tMS\tSTATUS\tERROR\tRESPONSE")
	for _, a := range d.AttemptLog {
		code := "-"
		if a.StatusCode != nil {
			code = strconv.Itoa(*a.StatusCode)
		}
		body := strings.Join(strings.Fields(a.ResponseBody), " ")
		if len(body) > 60 {
			body = body[:57] + "..."
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\t%s\n", a.N, a.StartedAt.Format(time.RFC3339), a.DurationMs, code, a.Error, body)
	}
	return tw.Flush()
}

func replay(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs, apiURL, token := newFlagSet("replay", stderr)
	one := fs.String("delivery", "", "replay this one delivery")
	survey := fs.String("survey", "", "survey id")
	webhook := fs.String("webhook", "", "webhook id")
	status := fs.String("status", "failed", "statuses to replay, comma separated")
	typ := fs.String("type", "", "event type")
	since := fs.String("since", "", "created at or after (required for a range)")
	until := fs.String("until", "", "created before (default now)")
	dryRun := fs.Bool("dry-run", false, "count what would be replayed, change nothing")
	noWait := fs.Bool("no-wait", false, "do not follow the replay's progress")
	if err := fs.Parse(args); err != nil {
		return ErrUsage
	}
	c, err := newClient(*apiURL, *token, getenv)
	if err != nil {
		return err
	}
	if *one != "" {
		var out struct {
			DeliveryID string `json:"deliveryId"`
		}
		if err := c.do(ctx, http.MethodPost, "/api/admin/deliveries/"+url.PathEscape(*one)+"/replay", struct{}{}, &out); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "replaying %s as %s\n", *one, out.DeliveryID)
		return nil
	}
	now := time.Now()
	s, err := parseTime(*since, now)
	if err != nil || s == "" {
		fmt.Fprintln(stderr, "replay: --since is required (RFC 3339 or a duration back from now)")
		return ErrUsage
	}
	u, err := parseTime(*until, now)
	if err != nil {
		return fmt.Errorf("--until: %w", err)
	}
	if u == "" {
		u = now.UTC().Format(time.RFC3339)
	}
	body := map[string]any{"since": s, "until": u, "dryRun": *dryRun, "status": splitList(*status)}
	if *survey != "" {
		body["surveyId"] = *survey
	}
	if *webhook != "" {
		body["webhookId"] = *webhook
	}
	if *typ != "" {
		body["type"] = *typ
	}
	var started struct {
		ReplayID string `json:"replayId"`
		Matched  int    `json:"matched"`
	}
	if err := c.do(ctx, http.MethodPost, "/api/admin/deliveries/replay", body, &started); err != nil {
		return err
	}
	if *dryRun {
		fmt.Fprintf(stdout, "dry run: %d deliveries match\n", started.Matched)
		return nil
	}
	fmt.Fprintf(stdout, "replay %s: %d deliveries match\n", started.ReplayID, started.Matched)
	if *noWait || started.ReplayID == "" {
		return nil
	}
	return follow(ctx, c, started.ReplayID, stdout)
}

// follow polls a replay until it completes, drawing a progress bar on a terminal and a line
// per change elsewhere.
func follow(ctx context.Context, c *client, id string, stdout io.Writer) error {
	tty := isTerminal(stdout)
	last := ""
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		var p struct {
			Matched  int    `json:"matched"`
			Enqueued int    `json:"enqueued"`
			Done     int    `json:"done"`
			Status   string `json:"status"`
		}
		if err := c.do(ctx, http.MethodGet, "/api/admin/replays/"+url.PathEscape(id), nil, &p); err != nil {
			return err
		}
		line := progressLine(p.Matched, p.Enqueued, p.Done, p.Status, tty)
		if tty {
			fmt.Fprint(stdout, "\r"+line)
		} else if line != last {
			fmt.Fprintln(stdout, line)
		}
		last = line
		if p.Status != "running" {
			if tty {
				fmt.Fprintln(stdout)
			}
			if p.Status == "failed" {
				return fmt.Errorf("replay %s failed", id)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			if tty {
				fmt.Fprintln(stdout)
			}
			return ctx.Err()
		case <-tick.C:
		}
	}
}

func progressLine(matched, enqueued, done int, status string, bar bool) string {
	text := fmt.Sprintf("%d/%d done, %d enqueued, %s", done, matched, enqueued, status)
	if !bar {
		return text
	}
	const width = 30
	filled := width
	if matched > 0 {
		filled = done * width / matched
	}
	filled = min(max(filled, 0), width)
	return "[" + strings.Repeat("#", filled) + strings.Repeat(".", width-filled) + "] " + text
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
