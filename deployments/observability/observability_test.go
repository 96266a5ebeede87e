package observability_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v4"

	"github.com/dispatch24/dispatch24/deployments/observability"
)

func TestMetricNames(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`up`, []string{"up"}},
		{`max(dispatch24_outbox_backlog) > 100`, []string{"dispatch24_outbox_backlog"}},
		{`sum by (status) (rate(dispatch24_deliveries_total{status="failed", job=~"a|b"}[5m]))`, []string{"dispatch24_deliveries_total"}},
		{`sum(rate(a_total[5m])) without (instance, job) / on (job) group_left (x) b`, []string{"a_total", "b"}},
		{`histogram_quantile(0.95, sum by (le) (rate(d_seconds_bucket[$__rate_interval])))`, []string{"d_seconds_bucket"}},
		{`sum(increase(e_total[${range}])) >= 1e3 and bool f offset 5m`, []string{"e_total", "f"}},
		{"label_replace(g, \"dst\", \"$1\", 'src', `(.*)`) # h_comment\n unless i", []string{"g", "i"}},
		{`rate(x:recorded:rate5m[1h:5m]) or vector(0) + Inf - NaN`, []string{"x:recorded:rate5m"}},
		{`sum(a) by (le) * on() group_right() a`, []string{"a"}},
		{`m{l="}{[("}`, []string{"m"}},
	} {
		got, err := observability.MetricNames(tc.expr)
		if err != nil {
			t.Errorf("MetricNames(%q): %v", tc.expr, err)
			continue
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("MetricNames(%q) = %q, want %q", tc.expr, got, tc.want)
		}
	}
	for _, bad := range []string{`{__name__="x"}`, `sum(rate(x[5m])`, `x{a="b}`, `x[5m`} {
		if got, err := observability.MetricNames(bad); err == nil {
			t.Errorf("MetricNames(%q) = %q, want an error", bad, got)
		}
	}
}

func FuzzMetricNames(f *testing.F) {
	for _, s := range []string{`sum by (a) (rate(x{y="z"}[5m]))`, `a or b`, "`", `${x}`, `{`, `m[`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		names, err := observability.MetricNames(expr)
		if err != nil {
			return
		}
		for _, n := range names {
			if n == "" || !strings.Contains(expr, n) {
				t.Fatalf("MetricNames(%q) gave %q, which is not in the expression", expr, n)
			}
		}
	})
}

// TestCoverage: the dashboard and the rules cover what issue 16 asks of them, and the
// retention purge (issue 13) is alerted on and shown.
func TestCoverage(t *testing.T) {
	t.Parallel()
	used, err := observability.UsedMetrics()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{
		"dispatch24_deliveries_total",
		"dispatch24_delivery_attempt_duration_seconds_bucket",
		"dispatch24_outbox_backlog",
		"dispatch24_pending_retries",
		"dispatch24_consumer_lag",
		"dispatch24_consumer_ack_pending",
		"dispatch24_endpoints_disabled_total",
		"dispatch24_nats_connected",
		"dispatch24_signin_rejections_total",
	} {
		var rule, panel bool
		for _, where := range used[name] {
			rule = rule || strings.HasPrefix(where, "rule ")
			panel = panel || strings.HasPrefix(where, "panel ")
		}
		if !rule || !panel {
			t.Errorf("%s: in a rule %v, on the dashboard %v; want both (used in %v)", name, rule, panel, used[name])
		}
	}
	// Alerted on.
	for _, name := range []string{
		"dispatch24_retry_claims_slow_total",
		"dispatch24_retention_last_success_timestamp_seconds",
	} {
		if !slices.ContainsFunc(used[name], func(where string) bool { return strings.HasPrefix(where, "rule ") }) {
			t.Errorf("%s: in no rule (used in %v)", name, used[name])
		}
	}
	// The retention purge's progress on the dashboard (issue 13): rows purged by table, the
	// oldest retained row's age, the last purge's duration and its batches.
	for _, name := range []string{
		"dispatch24_retention_purged_rows_total",
		"dispatch24_retention_oldest_age_seconds",
		"dispatch24_retention_last_purge_duration_seconds",
		"dispatch24_retention_last_success_timestamp_seconds",
		"dispatch24_retention_batch_duration_seconds_bucket",
	} {
		if !slices.ContainsFunc(used[name], func(where string) bool { return strings.HasPrefix(where, "panel ") }) {
			t.Errorf("%s: on no panel (used in %v)", name, used[name])
		}
	}
}

// TestDashboard: the dashboard is provisioning-ready: a fixed uid, every query on the
// datasource variable, unique panel ids, panels inside Grafana's 24-column grid.
func TestDashboard(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(observability.DashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	type datasource struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	}
	type gridPos struct{ H, W, X, Y int }
	var d struct {
		UID        string `json:"uid"`
		Title      string `json:"title"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Type  string `json:"type"`
				Query string `json:"query"`
			} `json:"list"`
		} `json:"templating"`
		Panels []struct {
			ID         int         `json:"id"`
			Type       string      `json:"type"`
			Title      string      `json:"title"`
			GridPos    gridPos     `json:"gridPos"`
			Datasource *datasource `json:"datasource"`
			Targets    []struct {
				Datasource *datasource `json:"datasource"`
				Expr       string      `json:"expr"`
				RefID      string      `json:"refId"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	if d.UID == "" || d.Title == "" {
		t.Errorf("uid %q title %q: a provisioned dashboard needs both", d.UID, d.Title)
	}
	if len(d.Templating.List) != 1 || d.Templating.List[0].Name != "datasource" ||
		d.Templating.List[0].Type != "datasource" || d.Templating.List[0].Query != "prometheus" {
		t.Errorf("templating %+v, want one datasource variable of type prometheus", d.Templating.List)
	}
	ids := map[int]bool{}
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if g := p.GridPos; g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 {
			t.Errorf("panel %q: gridPos %+v outside the 24-column grid", p.Title, g)
		}
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		want := datasource{Type: "prometheus", UID: "${datasource}"}
		if p.Datasource == nil || *p.Datasource != want {
			t.Errorf("panel %q: datasource %+v, want %+v", p.Title, p.Datasource, want)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			if tg.Datasource == nil || *tg.Datasource != want {
				t.Errorf("panel %q query %s: datasource %+v, want %+v", p.Title, tg.RefID, tg.Datasource, want)
			}
			if tg.RefID == "" || refs[tg.RefID] {
				t.Errorf("panel %q: refId %q empty or repeated", p.Title, tg.RefID)
			}
			refs[tg.RefID] = true
		}
	}
}

// promtool returns the path of Prometheus' promtool. Where it is missing the test skips,
// except in CI (CI or DISPATCH24_REQUIRE_PROMTOOL set), where it fails: .ci/run installs
// Debian's prometheus package for it.
func promtool(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" || os.Getenv("DISPATCH24_REQUIRE_PROMTOOL") != "" {
			t.Fatalf("promtool not found (apt-get install prometheus): %v", err)
		}
		t.Skipf("promtool not found (apt-get install prometheus); CI requires it: %v", err)
	}
	return path
}

func runPromtool(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.Command(promtool(t), args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestRulesParse parses the rules with Prometheus' own parser (promtool check rules), and
// checks every rule is an alert with a for duration, a severity and a runbook that names a
// section of README.md.
func TestRulesParse(t *testing.T) {
	t.Parallel()
	out := runPromtool(t, "check", "rules", observability.RulesFile)
	if !strings.Contains(out, "SUCCESS") {
		t.Fatalf("promtool check rules: %s", out)
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	for _, line := range strings.Split(string(readme), "\n") {
		if h, ok := strings.CutPrefix(line, "### "); ok {
			anchors[strings.ToLower(strings.TrimSpace(h))] = true
		}
	}
	for _, r := range rulesOf(t) {
		if r.Alert == "" || r.For == "" || r.Labels["severity"] == "" {
			t.Errorf("rule %q: want an alert with for and a severity label (for %q, labels %v)", r.Alert, r.For, r.Labels)
		}
		_, anchor, ok := strings.Cut(r.Annotations["runbook_url"], "deployments/observability/README.md#")
		if !ok || anchor != strings.ToLower(r.Alert) || !anchors[anchor] {
			t.Errorf("rule %s: runbook_url %q, want README.md#%s with a section \"### %s\"", r.Alert, r.Annotations["runbook_url"], strings.ToLower(r.Alert), r.Alert)
		}
		if r.Annotations["summary"] == "" {
			t.Errorf("rule %s: no summary", r.Alert)
		}
	}
}

// TestRulesUnit runs the alerts' unit tests (promtool test rules): given series, which alerts
// fire and when, and which do not.
func TestRulesUnit(t *testing.T) {
	t.Parallel()
	out := runPromtool(t, "test", "rules", observability.RuleTestsFile)
	if !strings.Contains(out, "SUCCESS") {
		t.Fatalf("promtool test rules: %s", out)
	}
	// Every alert has a test in which it fires.
	b, err := os.ReadFile(observability.RuleTestsFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rulesOf(t) {
		if !strings.Contains(string(b), "alertname: "+r.Alert+"\n        exp_alerts:\n          - ") {
			t.Errorf("alert %s has no unit test in which it fires", r.Alert)
		}
	}
}

// TestDashboardQueriesParse parses every dashboard query with Prometheus' parser: written as
// recording rules (Grafana's $__rate_interval and $__range replaced by durations) into a
// temporary file for promtool check rules.
func TestDashboardQueriesParse(t *testing.T) {
	t.Parallel()
	tool := promtool(t)
	exprs, err := observability.DashboardQueries()
	if err != nil {
		t.Fatal(err)
	}
	if len(exprs) == 0 {
		t.Fatal("the dashboard has no queries")
	}
	type recording struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	var rules []recording
	grafana := strings.NewReplacer("$__rate_interval", "1m", "$__range", "6h", "${__range}", "6h", "$__interval", "15s")
	for i, e := range exprs {
		rules = append(rules, recording{Record: fmt.Sprintf("dashboard:query_%d", i), Expr: grafana.Replace(e)})
	}
	b, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "dashboard.rules.yml")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(tool, "check", "rules", path).CombinedOutput()
	if err != nil || !strings.Contains(string(out), fmt.Sprintf("SUCCESS: %d rules found", len(exprs))) {
		t.Fatalf("promtool check rules on the dashboard's queries: %v\n%s\n%s", err, out, b)
	}
}

// TestPrometheusConfig checks the compose profile's Prometheus configuration with promtool.
func TestPrometheusConfig(t *testing.T) {
	t.Parallel()
	out := runPromtool(t, "check", "config", "--syntax-only", observability.PrometheusCfg)
	if !strings.Contains(out, "SUCCESS") {
		t.Fatalf("promtool check config: %s", out)
	}
}

type rule struct {
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

func rulesOf(t *testing.T) []rule {
	t.Helper()
	b, err := os.ReadFile(observability.RulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Rules []rule `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	var out []rule
	for _, g := range f.Groups {
		out = append(out, g.Rules...)
	}
	if len(out) == 0 {
		t.Fatal("no rules")
	}
	return out
}
