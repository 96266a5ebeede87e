package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/dispatch24/dispatch24/internal/store/storetest"
)

// TestFaults runs the short form of every scenario against the real binaries: any accepted
// submission that is not delivered, a backlog that does not drain within the bound, a
// delivery left pending past its schedule, or a delivery that fails verification fails
// it. A PostgreSQL that does not answer fails it too; it is never skipped for that.
func TestFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binaries and runs every fault scenario")
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, storetest.DatabaseURL())
	if err != nil {
		t.Fatalf("PostgreSQL at TEST_DATABASE_URL: %v", err)
	}
	conn.Close(ctx)

	dir := t.TempDir()
	var build bytes.Buffer
	bins, err := buildBinaries(ctx, dir, &build)
	if err != nil {
		t.Fatalf("%v\n%s", err, build.String())
	}
	o := shortOptions()
	o.scenarios = names()
	for _, s := range scenarios {
		t.Run(s.name, func(t *testing.T) {
			start := time.Now()
			r := runScenario(ctx, o, bins, dir, s)
			var b strings.Builder
			writeTable(&b, []*result{r})
			t.Logf("%s in %.0fs:\n%s", s.name, time.Since(start).Seconds(), b.String())
			if len(r.failures) > 0 {
				t.Errorf("%s failed:\n%s", s.name, strings.Join(r.failures, "\n"))
			}
			if r.accepted == 0 || r.delivered < r.accepted-r.lost {
				t.Errorf("counts do not add up: %d accepted, %d delivered, %d lost", r.accepted, r.delivered, r.lost)
			}
		})
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-scenario", "nope"}, {"-scenario", "api-kill9,"}, {"-rate", "-1"}, {"-clients", "-2"}, {"extra"},
	} {
		var out, errOut bytes.Buffer
		if err := run(context.Background(), args, &out, &errOut); err == nil {
			t.Errorf("%v: accepted", args)
		}
		if out.Len() > 0 {
			t.Errorf("%v: printed a table: %s", args, out.String())
		}
	}
}

func TestParseOptions(t *testing.T) {
	o, err := parseOptions([]string{"-scenario", "nats-kill9,receiver-refuses", "-full", "-rate", "50"}, new(bytes.Buffer))
	if err != nil {
		t.Fatal(err)
	}
	if !o.full || o.rate != 50 || o.clients != 8 || o.natsDown != 30*time.Second || o.refuseFor != 60*time.Second ||
		strings.Join(o.scenarios, ",") != "nats-kill9,receiver-refuses" {
		t.Errorf("options = %+v", o)
	}
	// The schedule must outlast the refusal, or the suite would count the contract's
	// give-up after the last attempt as a loss.
	for _, o := range []options{shortOptions(), fullOptions()} {
		var total time.Duration
		for _, d := range strings.Split(o.schedule, ",") {
			v, err := time.ParseDuration(d)
			if err != nil {
				t.Fatal(err)
			}
			total += v
		}
		if total < 2*o.refuseFor {
			t.Errorf("schedule %s (%s) does not outlast twice the %s refusal", o.schedule, total, o.refuseFor)
		}
	}
}
