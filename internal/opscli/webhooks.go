package opscli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dispatch24/dispatch24/pkg/client"
)

const webhooksSynopsis = "dispatcher webhooks list --survey S [--json]"

// webhooks lists a survey's webhooks with their delivery options (signatureScheme, ordering,
// rateLimit) and state, so that an operator sees from a shell what the console's first page
// shows of disabled endpoints. Secrets never appear: the API does not return them.
func webhooks(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "list" {
		if len(args) > 0 && (args[0] == "help" || args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
			args = []string{"list", "-h"}
		} else {
			return usageError(stderr, "webhooks: want list", webhooksSynopsis)
		}
	}
	fs, apiURL, token := newFlagSet("webhooks list", stderr, webhooksSynopsis)
	survey := fs.String("survey", "", "survey id (required)")
	asJSON := fs.Bool("json", false, "print one webhook a line, as JSON")
	if ok, err := parseFlags(fs, args[1:]); !ok {
		return err
	}
	bad := func(msg string) error { return usageError(stderr, "webhooks list: "+msg, webhooksSynopsis) }
	if fs.NArg() > 0 {
		return bad(fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	}
	if *survey == "" {
		return bad("--survey is required")
	}
	c, err := newClient(*apiURL, *token, getenv, stderr, webhooksSynopsis)
	if err != nil {
		return err
	}
	hooks, err := c.ListWebhooks(ctx, *survey)
	if err != nil {
		return explain(err)
	}
	if len(hooks) == 0 {
		fmt.Fprintln(stderr, "the survey has no webhooks")
		return nil
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		for _, h := range hooks {
			if err := enc.Encode(h); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tURL\tEVENTS\tSCHEME\tORDERING\tRATE LIMIT\tSTATE\tFAILURES")
	for _, h := range hooks {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\n", h.ID, redactURL(h.URL), strings.Join(h.Events, ","),
			dash(h.SignatureScheme), dash(h.Ordering), rateLimitText(h.RateLimit), webhookState(h), h.ConsecutiveFailures)
	}
	return tw.Flush()
}

// rateLimitText is a webhook's rateLimit for the table: "-" for none.
func rateLimitText(limit *int) string {
	if limit == nil {
		return "-"
	}
	return strconv.Itoa(*limit) + "/s"
}

// webhookState is "enabled", or "disabled since T: reason".
func webhookState(h client.Webhook) string {
	if !h.Disabled {
		return "enabled"
	}
	s := "disabled"
	if h.DisabledAt != nil {
		s += " since " + h.DisabledAt.UTC().Format(time.RFC3339)
	}
	if h.DisabledReason != "" {
		s += ": " + h.DisabledReason
	}
	return s
}
