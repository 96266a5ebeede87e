// Package observability holds Dispatch24's Grafana dashboard and Prometheus alerting rules
// (README.md beside this file), and reads them for the tests that keep them honest: which
// metrics they use (UsedMetrics), checked against what the binaries serve on /metrics
// (Missing) by cmd/api's and cmd/dispatcher's tests.
package observability

import (
	"embed"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v4"
)

// Paths of the artefacts, relative to this directory.
const (
	RulesFile     = "prometheus/rules/dispatch24.rules.yml"
	RuleTestsFile = "prometheus/rules/dispatch24.rules.test.yml"
	DashboardFile = "grafana/dashboards/dispatch24.json"
	PrometheusCfg = "prometheus/prometheus.yml"
)

//go:embed prometheus/rules/dispatch24.rules.yml grafana/dashboards/dispatch24.json
var files embed.FS

// AfterFirstPurge are the series a process serves only once it has completed a retention
// purge (the first runs a minute after the start): the oldest retained row's age is not known
// before. The binaries' tests skip them; internal/retention's tests check them after a purge.
var AfterFirstPurge = []string{"dispatch24_retention_oldest_age_seconds"}

// Synthetic are the series Prometheus makes itself for every target; no /metrics has them.
var Synthetic = []string{"up", "scrape_duration_seconds", "scrape_samples_scraped", "scrape_series_added"}

// UsedMetrics returns every metric name the alerting rules and the dashboard select, each
// with where it is used ("rule Dispatch24OutboxBacklog", "panel Pending retries").
func UsedMetrics() (map[string][]string, error) {
	used := map[string][]string{}
	add := func(where, expr string) error {
		names, err := MetricNames(expr)
		if err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		if len(names) == 0 {
			return fmt.Errorf("%s: %q selects no metric", where, expr)
		}
		for _, n := range names {
			used[n] = append(used[n], where)
		}
		return nil
	}

	b, err := files.ReadFile(RulesFile)
	if err != nil {
		return nil, err
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert  string `yaml:"alert"`
				Record string `yaml:"record"`
				Expr   string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &rules); err != nil {
		return nil, fmt.Errorf("%s: %w", RulesFile, err)
	}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if err := add("rule "+r.Alert+r.Record, r.Expr); err != nil {
				return nil, err
			}
		}
	}

	b, err = files.ReadFile(DashboardFile)
	if err != nil {
		return nil, err
	}
	var dash dashboard
	if err := json.Unmarshal(b, &dash); err != nil {
		return nil, fmt.Errorf("%s: %w", DashboardFile, err)
	}
	for _, v := range dash.Templating.List {
		if v.Type != "datasource" && v.Type != "interval" && v.Type != "custom" && v.Type != "constant" {
			// A query variable's metrics would escape the check below.
			return nil, fmt.Errorf("%s: variable %s of type %s is not read by UsedMetrics", DashboardFile, v.Name, v.Type)
		}
	}
	for _, p := range dash.allPanels() {
		for _, t := range p.Targets {
			if err := add("panel "+p.Title, t.Expr); err != nil {
				return nil, err
			}
		}
	}
	return used, nil
}

// DashboardQueries returns the PromQL of every query on the dashboard, in panel order, with
// Grafana's variables ($__rate_interval, $__range) as they are.
func DashboardQueries() ([]string, error) {
	b, err := files.ReadFile(DashboardFile)
	if err != nil {
		return nil, err
	}
	var dash dashboard
	if err := json.Unmarshal(b, &dash); err != nil {
		return nil, fmt.Errorf("%s: %w", DashboardFile, err)
	}
	var out []string
	for _, p := range dash.allPanels() {
		for _, t := range p.Targets {
			out = append(out, t.Expr)
		}
	}
	return out, nil
}

// dashboard is the part of a Grafana dashboard's JSON that holds queries.
type dashboard struct {
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name string `json:"name"`
			Type string `json:"type"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	Type    string  `json:"type"`
	Title   string  `json:"title"`
	Panels  []panel `json:"panels"` // a collapsed row's
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

func (d dashboard) allPanels() []panel {
	var out []panel
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			out = append(out, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

// Missing returns the used metrics that the exposition (Prometheus text format, as served on
// /metrics) has no sample of, sorted, leaving out Synthetic and the names skip holds. A
// histogram's samples are named with their _bucket, _sum and _count suffixes, which is how
// queries select them.
func Missing(used map[string][]string, exposition string, skip ...string) []string {
	have := ExposedNames(exposition)
	var out []string
	for n := range used {
		if !have[n] && !slices.Contains(Synthetic, n) && !slices.Contains(skip, n) {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// ExposedNames returns the names of the samples in a Prometheus text exposition.
func ExposedNames(exposition string) map[string]bool {
	have := map[string]bool{}
	for _, line := range strings.Split(exposition, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		if i := strings.IndexAny(line, "{ \t"); i > 0 {
			have[line[:i]] = true
		}
	}
	return have
}

// promqlWords are PromQL's keywords and the names that are no metric outside a selector.
var promqlWords = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
	"bool": true, "and": true, "or": true, "unless": true, "offset": true, "atan2": true,
	"inf": true, "nan": true,
}

// labelListWords are followed by a parenthesised list of label names.
var labelListWords = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
}

// MetricNames returns the metric names a PromQL expression selects, sorted and unique. It is a
// tokenizer, not a parser (promtool check rules parses): it skips string literals, label
// matchers in braces, ranges in brackets, label lists after by/without/on/ignoring/group_*,
// function names (an identifier before a parenthesis), keywords, numbers and Grafana variables
// ($x, ${x}). A selector by __name__ is refused: its metric would escape the check.
func MetricNames(expr string) ([]string, error) {
	var names []string
	s := expr
	i, depth := 0, 0
	skipSpace := func(j int) int {
		for j < len(s) && strings.ContainsRune(" \t\r\n", rune(s[j])) {
			j++
		}
		return j
	}
	// closing returns the index after the bracket closing the one at j, skipping strings.
	closing := func(j int) (int, error) {
		open, shut := s[j], map[byte]byte{'{': '}', '[': ']', '(': ')'}[s[j]]
		depth := 0
		for k := j; k < len(s); k++ {
			switch c := s[k]; {
			case c == '"' || c == '\'' || c == '`':
				end, err := stringEnd(s, k)
				if err != nil {
					return 0, err
				}
				k = end - 1
			case c == open:
				depth++
			case c == shut:
				depth--
				if depth == 0 {
					return k + 1, nil
				}
			}
		}
		return 0, fmt.Errorf("unbalanced %q in %q", open, expr)
	}
	for i < len(s) {
		c := s[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			end, err := stringEnd(s, i)
			if err != nil {
				return nil, err
			}
			i = end
		case c == '#':
			for i < len(s) && s[i] != '\n' {
				i++
			}
		case c == '{':
			end, err := closing(i)
			if err != nil {
				return nil, err
			}
			if strings.Contains(s[i:end], "__name__") {
				return nil, fmt.Errorf("selector by __name__ in %q: name the metric", expr)
			}
			i = end
		case c == '[':
			end, err := closing(i)
			if err != nil {
				return nil, err
			}
			i = end
		case c == '$':
			i++
			if i < len(s) && s[i] == '{' {
				end, err := closing(i)
				if err != nil {
					return nil, err
				}
				i = end
			} else {
				for i < len(s) && isIdentChar(s[i]) {
					i++
				}
			}
		case c >= '0' && c <= '9' || c == '.':
			for i < len(s) && (isIdentChar(s[i]) || s[i] == '.') {
				i++
			}
		case isIdentStart(c):
			j := i
			for j < len(s) && isIdentChar(s[j]) {
				j++
			}
			word := s[i:j]
			next := skipSpace(j)
			lower := strings.ToLower(word)
			switch {
			case labelListWords[lower]:
				i = next
				if i < len(s) && s[i] == '(' {
					end, err := closing(i)
					if err != nil {
						return nil, err
					}
					i = end
				}
				continue
			case promqlWords[lower]:
			case next < len(s) && s[next] == '(':
				// a function or an aggregation
			case labelListWords[strings.ToLower(wordAt(s, next))]:
				// an aggregation with its modifier first: sum by (le) (…)
			default:
				names = append(names, word)
			}
			i = j
		case c == '(':
			depth++
			i++
		case c == ')':
			if depth--; depth < 0 {
				return nil, fmt.Errorf("unbalanced ')' in %q", expr)
			}
			i++
		default:
			i++
		}
	}
	if depth != 0 {
		return nil, fmt.Errorf("unbalanced '(' in %q", expr)
	}
	slices.Sort(names)
	return slices.Compact(names), nil
}

// wordAt returns the identifier starting at i, if any.
func wordAt(s string, i int) string {
	j := i
	for j < len(s) && isIdentChar(s[j]) {
		j++
	}
	return s[i:j]
}

// stringEnd returns the index after the string literal starting at i.
func stringEnd(s string, i int) (int, error) {
	q := s[i]
	for k := i + 1; k < len(s); k++ {
		switch {
		case s[k] == '\\' && q != '`':
			k++
		case s[k] == q:
			return k + 1, nil
		}
	}
	return 0, fmt.Errorf("unterminated string in %q", s)
}

func isIdentStart(c byte) bool {
	return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func isIdentChar(c byte) bool { return isIdentStart(c) || c >= '0' && c <= '9' }
