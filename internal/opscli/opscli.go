// Package opscli is the operators' command line: `dispatcher deliveries list|show` and
// `dispatcher replay`. It talks to the API (DISPATCH24_API_URL) with a personal access token
// (DISPATCH24_TOKEN), so it needs no database or NATS credentials, obeys the same access rules
// as the console (staff see their surveys only), leaves the same audit trail, and works from
// any machine that reaches the API.
//
// Errors: a bad command line prints one line and the command's synopsis on stderr and returns
// an error that matches ErrUsage (exit status 2); anything the API refuses comes back as one
// line naming the request and the API's answer (exit status 1). The token never appears in
// either.
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
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mattn/go-isatty"
)

// ErrUsage matches the errors of bad command lines; their message and usage have been printed.
var ErrUsage = errors.New("usage error")

// Synopses of the commands.
const (
	listSynopsis        = "dispatcher deliveries list [--survey S] [--webhook W] [--status failed,…] [--type T] [--since T] [--until T] [--limit N] [--all] [--json]"
	showSynopsis        = "dispatcher deliveries show ID [--json]"
	replayOneSynopsis   = "dispatcher replay --delivery ID"
	replayRangeSynopsis = "dispatcher replay [--survey S] [--webhook W] [--status failed] [--type T] --since T [--until T] [--dry-run] [--no-wait]"
)

const connectionHelp = `Connection: --api-url or DISPATCH24_API_URL (default http://127.0.0.1:8080), and --token or
DISPATCH24_TOKEN: a personal access token (POST /api/admin/user/personal-access-tokens).
Times are RFC 3339 (2026-11-23T10:00:00Z) or durations back from now (24h).
`

// Usage writes the ops commands' usage to w.
func Usage(w io.Writer) {
	fmt.Fprintf(w, "usage:\n  %s\n  %s\n  %s\n  %s\n\n%s", listSynopsis, showSynopsis, replayOneSynopsis, replayRangeSynopsis, connectionHelp)
}

// Run runs one ops command. args start after the program name ("deliveries", "list", …);
// "help" (or -h), optionally followed by a command, prints usage to stdout.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	secrets := tokensIn(args, getenv)
	err := run(ctx, args, getenv, stdout, &redactingWriter{w: stderr, secrets: secrets})
	return redact(err, secrets)
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		Usage(stderr)
		return ErrUsage
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		return help(ctx, args[1:], getenv, stdout)
	case "deliveries":
		if len(args) < 2 {
			return usageError(stderr, "deliveries: want list or show", listSynopsis, showSynopsis)
		}
		switch args[1] {
		case "list":
			return list(ctx, args[2:], getenv, stdout, stderr)
		case "show":
			return show(ctx, args[2:], getenv, stdout, stderr)
		case "help", "-h", "-help", "--help":
			return help(ctx, []string{"deliveries"}, getenv, stdout)
		}
		return usageError(stderr, fmt.Sprintf("deliveries: unknown command %q (want list or show)", args[1]), listSynopsis, showSynopsis)
	case "replay":
		return replay(ctx, args[1:], getenv, stdout, stderr)
	}
	return usageError(stderr, fmt.Sprintf("unknown command %q", args[0]), listSynopsis, showSynopsis, replayOneSynopsis, replayRangeSynopsis)
}

// help prints the usage of every command, or with a topic the flags of that command.
func help(ctx context.Context, topic []string, getenv func(string) string, stdout io.Writer) error {
	if len(topic) == 0 {
		Usage(stdout)
		return nil
	}
	var args []string
	switch topic[0] {
	case "deliveries":
		if len(topic) > 1 {
			args = []string{"deliveries", topic[1], "-h"}
			break
		}
		fmt.Fprintf(stdout, "usage:\n  %s\n  %s\n\n%s", listSynopsis, showSynopsis, connectionHelp)
		return nil
	case "replay":
		args = []string{"replay", "-h"}
	default:
		Usage(stdout)
		return nil
	}
	// -h prints the command's flags on the output it is given; ask for it on stdout.
	return run(ctx, args, getenv, stdout, stdout)
}

// usageError prints msg and the synopses on w and returns an error matching ErrUsage.
func usageError(w io.Writer, msg string, synopses ...string) error {
	fmt.Fprintf(w, "dispatcher: %s\nusage:\n", msg)
	for _, s := range synopses {
		fmt.Fprintf(w, "  %s\n", s)
	}
	fmt.Fprintln(w, "Run 'dispatcher help' for the flags.")
	return fmt.Errorf("%w: %s", ErrUsage, msg)
}

// newFlagSet returns a flag set for one command with the connection flags; its usage prints
// the synopses, the flags and the connection help.
func newFlagSet(name string, stderr io.Writer, synopses ...string) (*flag.FlagSet, *string, *string) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	apiURL := fs.String("api-url", "", "API base URL (env DISPATCH24_API_URL)")
	token := fs.String("token", "", "personal access token (env DISPATCH24_TOKEN)")
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintln(w, "usage:")
		for _, s := range synopses {
			fmt.Fprintf(w, "  %s\n", s)
		}
		fmt.Fprintln(w, "\nflags:")
		fs.PrintDefaults()
		fmt.Fprintf(w, "\n%s", connectionHelp)
	}
	return fs, apiURL, token
}

// parseFlags parses args; -h is answered (usage printed, ok false, nil error).
func parseFlags(fs *flag.FlagSet, args []string) (ok bool, err error) {
	switch err := fs.Parse(args); {
	case errors.Is(err, flag.ErrHelp):
		return false, nil
	case err != nil:
		// The flag package has printed the error and the usage.
		return false, fmt.Errorf("%w: %v", ErrUsage, err)
	}
	return true, nil
}

// client calls the API with a personal access token.
type client struct {
	base  string
	token string
	http  *http.Client
}

func newClient(apiURL, token string, getenv func(string) string, stderr io.Writer, synopses ...string) (*client, error) {
	if apiURL == "" {
		apiURL = getenv("DISPATCH24_API_URL")
	}
	if apiURL == "" {
		apiURL = "http://127.0.0.1:8080"
	}
	if token == "" {
		token = getenv("DISPATCH24_TOKEN")
	}
	token = strings.TrimSpace(token)
	if token == "" {
		return nil, usageError(stderr, "no token: set DISPATCH24_TOKEN or --token to a personal access token", synopses...)
	}
	u, err := url.Parse(apiURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return nil, usageError(stderr, fmt.Sprintf("API URL %q is not an http(s) URL without credentials", redactURL(apiURL)), synopses...)
	}
	return &client{
		base:  strings.TrimRight(u.String(), "/"),
		token: token,
		http: &http.Client{
			Timeout: 30 * time.Second,
			// A redirect would take the token somewhere else: refuse it, and say where to point
			// --api-url instead.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}, nil
}

// apiError is an answer of the API that is not a success: one line naming the request and
// the problem+json the API sent.
type apiError struct {
	Method string `json:"-"`
	Path   string `json:"-"`
	Status int    `json:"status"`
	Code   string `json:"code"`
	Detail string `json:"detail"`
	Errors []struct {
		Field   string `json:"field"`
		Message string `json:"message"`
	} `json:"errors"`
	Location string `json:"-"`
}

func (e *apiError) Error() string {
	code := e.Code
	if code == "" {
		code = strings.ToLower(strings.ReplaceAll(http.StatusText(e.Status), " ", "_"))
	}
	msg := fmt.Sprintf("%s %s: the API answered %d %s", e.Method, e.Path, e.Status, code)
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	for _, fe := range e.Errors {
		msg += fmt.Sprintf("; %s %s", fe.Field, fe.Message)
	}
	switch {
	case e.Status == http.StatusUnauthorized:
		msg += " (check the personal access token in DISPATCH24_TOKEN or --token: it is wrong, expired or revoked)"
	case e.Status == http.StatusForbidden:
		msg += " (the token's account may not do this)"
	case e.Status >= 300 && e.Status < 400:
		msg += fmt.Sprintf(" (a redirect to %q: point DISPATCH24_API_URL or --api-url at the API itself)", e.Location)
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
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return fmt.Errorf("%s %s: calling the API at %s: %w", method, stripQuery(path), c.base, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%s %s: reading the API's answer: %w", method, stripQuery(path), err)
	}
	if resp.StatusCode >= 300 {
		ae := &apiError{}
		_ = json.Unmarshal(raw, ae)
		ae.Method, ae.Path, ae.Status, ae.Location = method, stripQuery(path), resp.StatusCode, resp.Header.Get("Location")
		return ae
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%s %s: decoding the API's answer: %w", method, stripQuery(path), err)
		}
	}
	return nil
}

func stripQuery(path string) string {
	p, _, _ := strings.Cut(path, "?")
	return p
}

// parseTime accepts RFC 3339 or a duration back from now.
func parseTime(s string, now time.Time) (string, error) {
	if s == "" {
		return "", nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC().Format(time.RFC3339Nano), nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d).UTC().Format(time.RFC3339), nil
	}
	return "", fmt.Errorf("%q is neither an RFC 3339 time nor a duration", s)
}

// statuses are the delivery statuses the API knows.
var statuses = []string{"pending", "succeeded", "failed", "skipped"}

func checkStatuses(list []string) error {
	for _, s := range list {
		if !slices.Contains(statuses, s) {
			return fmt.Errorf("--status: %q is not one of %s", s, strings.Join(statuses, ", "))
		}
	}
	return nil
}

type attempt struct {
	N            int       `json:"n"`
	StartedAt    time.Time `json:"startedAt"`
	DurationMs   int       `json:"durationMs"`
	StatusCode   *int      `json:"statusCode"`
	Error        string    `json:"error"`
	ResponseBody string    `json:"responseBody"`
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
	ReplayID       string     `json:"replayId"`
	AttemptLog     []attempt  `json:"attemptLog"`
}

func list(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs, apiURL, token := newFlagSet("deliveries list", stderr, listSynopsis)
	survey := fs.String("survey", "", "survey id")
	webhook := fs.String("webhook", "", "webhook id")
	status := fs.String("status", "", "statuses, comma separated: pending,succeeded,failed,skipped")
	typ := fs.String("type", "", "event type")
	since := fs.String("since", "", "created at or after (RFC 3339 or a duration back from now)")
	until := fs.String("until", "", "created before")
	limit := fs.Int("limit", 50, "rows per page (1 to 500)")
	all := fs.Bool("all", false, "follow every page")
	asJSON := fs.Bool("json", false, "print the API's JSON, one delivery a line")
	if ok, err := parseFlags(fs, args); !ok {
		return err
	}
	bad := func(msg string) error { return usageError(stderr, "deliveries list: "+msg, listSynopsis) }
	if fs.NArg() > 0 {
		return bad(fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	}
	if *limit < 1 || *limit > 500 {
		return bad("--limit: want a whole number from 1 to 500")
	}
	if err := checkStatuses(splitList(*status)); err != nil {
		return bad(err.Error())
	}
	now := time.Now()
	s, err := parseTime(*since, now)
	if err != nil {
		return bad("--since: " + err.Error())
	}
	u, err := parseTime(*until, now)
	if err != nil {
		return bad("--until: " + err.Error())
	}
	c, err := newClient(*apiURL, *token, getenv, stderr, listSynopsis)
	if err != nil {
		return err
	}
	q := url.Values{}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	set("surveyId", *survey)
	set("webhookId", *webhook)
	set("status", strings.Join(splitList(*status), ","))
	set("type", *typ)
	set("since", s)
	set("until", u)
	q.Set("limit", strconv.Itoa(*limit))

	var tw *tabwriter.Writer
	if !*asJSON {
		tw = tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSTATUS\tATTEMPTS\tLAST\tTYPE\tSURVEY\tWEBHOOK\tCREATED\tREPLAY OF")
	}
	for {
		var page struct {
			Items      []json.RawMessage `json:"items"`
			NextCursor *string           `json:"nextCursor"`
		}
		if err := c.do(ctx, http.MethodGet, "/api/admin/deliveries?"+q.Encode(), nil, &page); err != nil {
			return err
		}
		for _, item := range page.Items {
			if *asJSON {
				var line bytes.Buffer
				if err := json.Compact(&line, item); err != nil {
					return fmt.Errorf("decoding the API's answer: %w", err)
				}
				line.WriteByte('\n')
				if _, err := stdout.Write(line.Bytes()); err != nil {
					return err
				}
				continue
			}
			var d delivery
			if err := json.Unmarshal(item, &d); err != nil {
				return fmt.Errorf("decoding the API's answer: %w", err)
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", d.ID, d.Status, d.Attempts, lastOutcome(d),
				d.Type, d.SurveyID, d.WebhookID, d.CreatedAt.Format(time.RFC3339), dash(d.ReplayOf))
		}
		if !*all || page.NextCursor == nil || *page.NextCursor == "" {
			break
		}
		q.Set("cursor", *page.NextCursor)
	}
	if tw != nil {
		return tw.Flush()
	}
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
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
	fs, apiURL, token := newFlagSet("deliveries show", stderr, showSynopsis)
	asJSON := fs.Bool("json", false, "print the API's JSON")
	// Allow the id before or after the flags.
	var id string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		id, args = args[0], args[1:]
	}
	if ok, err := parseFlags(fs, args); !ok {
		return err
	}
	rest := fs.Args()
	if id == "" && len(rest) > 0 {
		id, rest = rest[0], rest[1:]
	}
	switch {
	case id == "":
		return usageError(stderr, "deliveries show: which delivery? (an ID from deliveries list)", showSynopsis)
	case len(rest) > 0:
		return usageError(stderr, fmt.Sprintf("deliveries show: unexpected argument %q", rest[0]), showSynopsis)
	}
	c, err := newClient(*apiURL, *token, getenv, stderr, showSynopsis)
	if err != nil {
		return err
	}
	var raw json.RawMessage
	if err := c.do(ctx, http.MethodGet, "/api/admin/deliveries/"+url.PathEscape(id), nil, &raw); err != nil {
		return err
	}
	if *asJSON {
		var out bytes.Buffer
		if err := json.Indent(&out, raw, "", "  "); err != nil {
			return fmt.Errorf("decoding the API's answer: %w", err)
		}
		out.WriteByte('\n')
		_, err := stdout.Write(out.Bytes())
		return err
	}
	var d delivery
	if err := json.Unmarshal(raw, &d); err != nil {
		return fmt.Errorf("decoding the API's answer: %w", err)
	}
	fmt.Fprintf(stdout, "delivery  %s\nevent     %s (%s)\nsurvey    %s\nwebhook   %s %s\nstatus    %s after %d attempt(s)\ncreated   %s\n",
		d.ID, d.EventID, d.Type, d.SurveyID, d.WebhookID, d.URL, d.Status, d.Attempts, d.CreatedAt.Format(time.RFC3339))
	if d.NextAttemptAt != nil {
		fmt.Fprintf(stdout, "next      %s\n", d.NextAttemptAt.Format(time.RFC3339))
	}
	if d.ReplayOf != "" {
		fmt.Fprintf(stdout, "replay of %s\n", d.ReplayOf)
	}
	if d.ReplayID != "" {
		fmt.Fprintf(stdout, "replay    %s\n", d.ReplayID)
	}
	if len(d.AttemptLog) == 0 {
		fmt.Fprintln(stdout, "\nno attempts yet")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\nN\tSTARTED\tMS\tSTATUS\tERROR\tRESPONSE")
	for _, a := range d.AttemptLog {
		code := "-"
		if a.StatusCode != nil {
			code = strconv.Itoa(*a.StatusCode)
		}
		body := strings.Join(strings.Fields(a.ResponseBody), " ")
		if r := []rune(body); len(r) > 60 {
			body = string(r[:57]) + "..."
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\t%s\n", a.N, a.StartedAt.Format(time.RFC3339Nano), a.DurationMs, code, dash(a.Error), dash(body))
	}
	return tw.Flush()
}

func replay(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs, apiURL, token := newFlagSet("replay", stderr, replayOneSynopsis, replayRangeSynopsis)
	one := fs.String("delivery", "", "replay this one delivery")
	survey := fs.String("survey", "", "survey id")
	webhook := fs.String("webhook", "", "webhook id")
	status := fs.String("status", "failed", "statuses to replay, comma separated")
	typ := fs.String("type", "", "event type")
	since := fs.String("since", "", "created at or after (required for a range)")
	until := fs.String("until", "", "created before (default now)")
	dryRun := fs.Bool("dry-run", false, "count what would be replayed, change nothing")
	noWait := fs.Bool("no-wait", false, "do not follow the replay's progress")
	if ok, err := parseFlags(fs, args); !ok {
		return err
	}
	bad := func(msg string) error {
		return usageError(stderr, "replay: "+msg, replayOneSynopsis, replayRangeSynopsis)
	}
	if fs.NArg() > 0 {
		return bad(fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	}
	if *one != "" {
		var extra []string
		fs.Visit(func(f *flag.Flag) {
			if f.Name != "delivery" && f.Name != "api-url" && f.Name != "token" {
				extra = append(extra, "--"+f.Name)
			}
		})
		if len(extra) > 0 {
			return bad("--delivery replays one delivery; it does not combine with " + strings.Join(extra, ", "))
		}
		c, err := newClient(*apiURL, *token, getenv, stderr, replayOneSynopsis)
		if err != nil {
			return err
		}
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
	if *since == "" {
		return bad("--since is required for a range (or --delivery ID for one delivery)")
	}
	s, err := parseTime(*since, now)
	if err != nil {
		return bad("--since: " + err.Error())
	}
	u, err := parseTime(*until, now)
	if err != nil {
		return bad("--until: " + err.Error())
	}
	if u == "" {
		u = now.UTC().Format(time.RFC3339Nano)
	}
	st := splitList(*status)
	if len(st) == 0 {
		return bad("--status: want at least one status")
	}
	if err := checkStatuses(st); err != nil {
		return bad(err.Error())
	}
	c, err := newClient(*apiURL, *token, getenv, stderr, replayRangeSynopsis)
	if err != nil {
		return err
	}
	body := map[string]any{"since": s, "until": u, "dryRun": *dryRun, "status": st}
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
		fmt.Fprintf(stdout, "dry run: %s; nothing was replayed\n", matches(started.Matched))
		return nil
	}
	fmt.Fprintf(stdout, "replay %s: %s\n", started.ReplayID, matches(started.Matched))
	if *noWait || started.ReplayID == "" {
		return nil
	}
	return follow(ctx, c, started.ReplayID, stdout)
}

// follow polls a replay until it completes, drawing a progress bar on a terminal and printing
// a line per change elsewhere.
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
			Error    string `json:"error"`
		}
		if err := c.do(ctx, http.MethodGet, "/api/admin/replays/"+url.PathEscape(id), nil, &p); err != nil {
			if tty && last != "" {
				fmt.Fprintln(stdout)
			}
			return fmt.Errorf("following replay %s (it goes on in the API): %w", id, err)
		}
		line := progressLine(p.Matched, p.Enqueued, p.Done, p.Status, tty)
		if tty {
			fmt.Fprint(stdout, "\r\033[K"+line)
		} else if line != last {
			fmt.Fprintln(stdout, line)
		}
		last = line
		if p.Status != "running" {
			if tty {
				fmt.Fprintln(stdout)
			}
			if p.Status == "failed" {
				if p.Error != "" {
					return fmt.Errorf("replay %s failed: %s", id, p.Error)
				}
				return fmt.Errorf("replay %s failed", id)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			if tty {
				fmt.Fprintln(stdout)
			}
			return fmt.Errorf("stopped following replay %s (it goes on in the API): %w", id, ctx.Err())
		case <-tick.C:
		}
	}
}

// matches says how many deliveries a range matched.
func matches(n int) string {
	if n == 1 {
		return "1 delivery matches"
	}
	return fmt.Sprintf("%d deliveries match", n)
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
	for p := range strings.SplitSeq(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// isTerminal reports whether w is a terminal (not a file, a pipe or /dev/null).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

// tokensIn returns the tokens a command line may carry: DISPATCH24_TOKEN and the values of
// --token, found before parsing so that even a command line that fails to parse cannot echo
// them. Values shorter than minSecret are left out: they cannot be real tokens (a personal
// access token has 50 characters), and taking every "x" out of a message would garble it.
func tokensIn(args []string, getenv func(string) string) []string {
	const minSecret = 8
	var out []string
	add := func(s string) {
		if s = strings.TrimSpace(s); len(s) >= minSecret && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	add(getenv("DISPATCH24_TOKEN"))
	for i, a := range args {
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") || name != "token" {
			continue
		}
		if hasValue {
			add(value)
		} else if i+1 < len(args) {
			add(args[i+1])
		}
	}
	return out
}

const redacted = "[redacted]"

func redactString(s string, secrets []string) string {
	for _, t := range secrets {
		s = strings.ReplaceAll(s, t, redacted)
	}
	return s
}

// redactedError is an error whose message had a token in it.
type redactedError struct {
	msg   string
	usage bool
}

func (e *redactedError) Error() string        { return e.msg }
func (e *redactedError) Is(target error) bool { return e.usage && target == ErrUsage }

// redact returns err with every secret taken out of its message.
func redact(err error, secrets []string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if clean := redactString(msg, secrets); clean != msg {
		return &redactedError{msg: clean, usage: errors.Is(err, ErrUsage)}
	}
	return err
}

// redactingWriter takes the secrets out of each write (usage and flag errors, which go out
// in whole lines).
type redactingWriter struct {
	w       io.Writer
	secrets []string
}

func (r *redactingWriter) Write(p []byte) (int, error) {
	if len(r.secrets) == 0 {
		return r.w.Write(p)
	}
	if _, err := io.WriteString(r.w, redactString(string(p), r.secrets)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// redactURL hides a password in a URL the user gave.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	u.User = url.User(redacted)
	return u.String()
}
