// Package opscli is the operators' command line: `dispatcher deliveries list|show`,
// `dispatcher replay` and `dispatcher webhooks list`. It talks to the API (DISPATCH24_API_URL) with a personal access token
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

	"github.com/dispatch24/dispatch24/pkg/client"
)

// ErrUsage matches the errors of bad command lines; their message and usage have been printed.
var ErrUsage = errors.New("usage error")

// Synopses of the commands.
const (
	listSynopsis        = "dispatcher deliveries list [--survey S] [--webhook W] [--status failed,…] [--type T] [--since T] [--until T] [--limit N] [--all | --cursor C] [--json]"
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
	fmt.Fprintf(w, "usage:\n  %s\n  %s\n  %s\n  %s\n  %s\n\n%s", listSynopsis, showSynopsis, replayOneSynopsis, replayRangeSynopsis,
		webhooksSynopsis, connectionHelp)
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
	case "webhooks":
		return webhooks(ctx, args[1:], getenv, stdout, stderr)
	}
	return usageError(stderr, fmt.Sprintf("unknown command %q", args[0]), listSynopsis, showSynopsis, replayOneSynopsis, replayRangeSynopsis,
		webhooksSynopsis)
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
	case "webhooks":
		args = []string{"webhooks", "list", "-h"}
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

// newClient returns a client of the API for the connection flags and environment.
func newClient(apiURL, token string, getenv func(string) string, stderr io.Writer, synopses ...string) (*client.Client, error) {
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
	c, err := client.New(apiURL, client.WithToken(token))
	if err != nil {
		return nil, usageError(stderr, fmt.Sprintf("API URL %q is not an http(s) URL without credentials", redactURL(apiURL)), synopses...)
	}
	return c, nil
}

// apiError is an answer of the API that is not a success, with what to do about it.
type apiError struct{ err *client.Error }

func (e *apiError) Unwrap() error { return e.err }

func (e *apiError) Error() string {
	msg := e.err.Error()
	switch s := e.err.StatusCode; {
	case s == http.StatusUnauthorized:
		msg += " (check the personal access token in DISPATCH24_TOKEN or --token: it is wrong, expired or revoked)"
	case s == http.StatusForbidden:
		msg += " (the token's account may not do this)"
	case s >= 300 && s < 400:
		msg += " (point DISPATCH24_API_URL or --api-url at the API itself)"
	}
	return msg
}

// explain adds the advice for the API's refusals to err.
func explain(err error) error {
	var ce *client.Error
	if errors.As(err, &ce) {
		return &apiError{ce}
	}
	return err
}

// checkStatuses checks --status against allowed (the statuses of the command), saying why
// a known status is not allowed.
func checkStatuses(list, allowed []string) error {
	for _, s := range list {
		switch {
		case slices.Contains(allowed, s):
		case s == client.StatusPending:
			return fmt.Errorf("--status: pending deliveries are still being attempted and cannot be replayed; choose from %s",
				strings.Join(allowed, ", "))
		default:
			return fmt.Errorf("--status: %q is not a delivery status; choose from %s", s, strings.Join(allowed, ", "))
		}
	}
	return nil
}

func list(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs, apiURL, token := newFlagSet("deliveries list", stderr, listSynopsis)
	survey := fs.String("survey", "", "survey id")
	webhook := fs.String("webhook", "", "webhook id")
	status := fs.String("status", "", "statuses, comma separated: "+strings.Join(client.Statuses, ","))
	typ := fs.String("type", "", "event type")
	since := fs.String("since", "", "created at or after (RFC 3339 or a duration back from now)")
	until := fs.String("until", "", "created before")
	limit := fs.Int("limit", 50, "rows per page (1 to 500)")
	all := fs.Bool("all", false, "follow every page")
	cursor := fs.String("cursor", "", "start after an earlier page (the cursor it printed)")
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
	f := client.DeliveryFilter{SurveyID: *survey, WebhookID: *webhook, Status: splitList(*status), Type: *typ,
		Limit: *limit, Cursor: *cursor}
	if err := checkStatuses(f.Status, client.Statuses); err != nil {
		return bad(err.Error())
	}
	now := time.Now()
	var err error
	if f.Since, err = client.ParseTime(*since, now); err != nil {
		return bad("--since: " + err.Error())
	}
	if f.Until, err = client.ParseTime(*until, now); err != nil {
		return bad("--until: " + err.Error())
	}
	c, err := newClient(*apiURL, *token, getenv, stderr, listSynopsis)
	if err != nil {
		return err
	}

	var (
		tw    *tabwriter.Writer
		rows  int
		next  string
		query = f.Query()
	)
	for {
		// The JSON lines are the API's own items, as it sent them; the table reads them typed.
		var page struct {
			Items      []json.RawMessage `json:"items"`
			NextCursor *string           `json:"nextCursor"`
		}
		if err := c.Do(ctx, http.MethodGet, "/api/admin/deliveries", query, nil, &page); err != nil {
			return explain(err)
		}
		for _, item := range page.Items {
			rows++
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
			var d client.Delivery
			if err := json.Unmarshal(item, &d); err != nil {
				return fmt.Errorf("decoding the API's answer: %w", err)
			}
			if tw == nil {
				tw = tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tSTATUS\tATTEMPTS\tLAST\tTYPE\tSURVEY\tWEBHOOK\tCREATED\tREPLAY OF")
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", d.ID, d.Status, d.Attempts, lastOutcome(d),
				d.Type, d.SurveyID, d.WebhookID, d.CreatedAt.Format(time.RFC3339), dash(d.ReplayOf))
		}
		next = ""
		if page.NextCursor != nil {
			next = *page.NextCursor
		}
		if !*all || next == "" {
			break
		}
		query.Set("cursor", next)
	}
	if tw != nil {
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	// Notes go to stderr, so that stdout stays the rows alone.
	if rows == 0 {
		fmt.Fprintln(stderr, "no deliveries match")
	}
	if next != "" {
		fmt.Fprintf(stderr, "more rows: use --all for every page, or --cursor %s for the next %d\n", next, *limit)
	}
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func lastOutcome(d client.Delivery) string {
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
	if *asJSON {
		var raw json.RawMessage
		if err := c.Do(ctx, http.MethodGet, "/api/admin/deliveries/"+url.PathEscape(id), nil, nil, &raw); err != nil {
			return explain(err)
		}
		var out bytes.Buffer
		if err := json.Indent(&out, raw, "", "  "); err != nil {
			return fmt.Errorf("decoding the API's answer: %w", err)
		}
		out.WriteByte('\n')
		_, err := stdout.Write(out.Bytes())
		return err
	}
	d, err := c.GetDelivery(ctx, id)
	if err != nil {
		return explain(err)
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
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\t%s\n", a.N, a.StartedAt.Format(time.RFC3339Nano), a.DurationMS, code, dash(a.Error), dash(body))
	}
	return tw.Flush()
}

func replay(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs, apiURL, token := newFlagSet("replay", stderr, replayOneSynopsis, replayRangeSynopsis)
	one := fs.String("delivery", "", "replay this one delivery")
	survey := fs.String("survey", "", "survey id")
	webhook := fs.String("webhook", "", "webhook id")
	status := fs.String("status", client.StatusFailed, "statuses to replay, comma separated: "+strings.Join(client.ReplayableStatuses, ","))
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
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	if *one != "" {
		var extra []string
		for name := range given {
			if name != "delivery" && name != "api-url" && name != "token" {
				extra = append(extra, "--"+name)
			}
		}
		slices.Sort(extra)
		if len(extra) > 0 {
			return bad("--delivery replays one delivery; it does not combine with " + strings.Join(extra, ", "))
		}
		c, err := newClient(*apiURL, *token, getenv, stderr, replayOneSynopsis)
		if err != nil {
			return err
		}
		out, err := c.ReplayDelivery(ctx, *one)
		if err != nil {
			return explain(err)
		}
		fmt.Fprintf(stdout, "replaying %s as %s\n", *one, out.DeliveryID)
		return nil
	}
	now := time.Now()
	if *since == "" {
		return bad("--since is required for a range (or --delivery ID for one delivery)")
	}
	r := client.ReplayRange{SurveyID: *survey, WebhookID: *webhook, Type: *typ, Status: splitList(*status), DryRun: *dryRun}
	var err error
	if r.Since, err = client.ParseTime(*since, now); err != nil {
		return bad("--since: " + err.Error())
	}
	if r.Until, err = client.ParseTime(*until, now); err != nil {
		return bad("--until: " + err.Error())
	}
	if r.Until.IsZero() {
		r.Until = now.UTC()
	}
	if len(r.Status) == 0 {
		return bad("--status: want at least one status")
	}
	if err := checkStatuses(r.Status, client.ReplayableStatuses); err != nil {
		return bad(err.Error())
	}
	c, err := newClient(*apiURL, *token, getenv, stderr, replayRangeSynopsis)
	if err != nil {
		return err
	}
	started, err := c.StartReplay(ctx, r)
	if err != nil {
		return explain(err)
	}
	what := matches(started.Matched)
	if !given["status"] {
		what += " (status=failed, the default; --status chooses others)"
	}
	if *dryRun {
		fmt.Fprintf(stdout, "dry run: %s; nothing was replayed\n", what)
		return nil
	}
	fmt.Fprintf(stdout, "replay %s: %s\n", started.ReplayID, what)
	if *noWait || started.ReplayID == "" {
		return nil
	}
	return follow(ctx, c, started.ReplayID, stdout)
}

// follow polls a replay until it completes, drawing a progress bar on a terminal and printing
// a line per change elsewhere.
func follow(ctx context.Context, c *client.Client, id string, stdout io.Writer) error {
	tty := isTerminal(stdout)
	last := ""
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		p, err := c.GetReplay(ctx, id)
		if err != nil {
			if tty && last != "" {
				fmt.Fprintln(stdout)
			}
			return fmt.Errorf("following replay %s (it goes on in the API): %w", id, explain(err))
		}
		line := progressLine(p, tty)
		if tty {
			fmt.Fprint(stdout, "\r\033[K"+line)
		} else if line != last {
			fmt.Fprintln(stdout, line)
		}
		last = line
		if p.Status != client.ReplayRunning {
			if tty {
				fmt.Fprintln(stdout)
			}
			if p.Status == client.ReplayFailed {
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
func matches(n int64) string {
	if n == 1 {
		return "1 delivery matches"
	}
	return fmt.Sprintf("%d deliveries match", n)
}

// progressLine says how far a replay is and how its deliveries ended, with a bar on a
// terminal. The bar counts the deliveries done; the counts after it say whether they
// succeeded, so a replay whose deliveries all failed again does not read as a success.
func progressLine(p *client.Replay, bar bool) string {
	text := fmt.Sprintf("%d/%d done, %d enqueued, %s: %d succeeded, %d failed", p.Done, p.Matched, p.Enqueued, p.Status, p.Succeeded, p.Failed)
	if skipped := p.Done - p.Succeeded - p.Failed; skipped > 0 {
		text += fmt.Sprintf(", %d skipped", skipped)
	}
	if !bar {
		return text
	}
	const width = 30
	filled := int64(width)
	if p.Matched > 0 {
		filled = p.Done * width / p.Matched
	}
	filled = min(max(filled, 0), width)
	return "[" + strings.Repeat("#", int(filled)) + strings.Repeat(".", width-int(filled)) + "] " + text
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
