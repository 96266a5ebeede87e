package main

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestREADMEMetricsMatchTheRegistry: the README's list of series (Operations, "GET /metrics")
// names every dispatch24_ series the api registers, each with exactly its labels, and nothing
// else (issue 16 item 7: it said deliveries_total{outcome} where the label is status).
func TestREADMEMetricsMatchTheRegistry(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(readme)
	start := strings.Index(text, "- `GET /metrics`")
	if start < 0 {
		t.Fatal("README has no GET /metrics bullet")
	}
	end := strings.Index(text[start:], "plus the Go runtime's")
	if end < 0 {
		t.Fatal("README's GET /metrics bullet does not end with the Go runtime's series")
	}
	documented := map[string][]string{}
	for _, m := range regexp.MustCompile("`(dispatch24_[a-z_]+)(?:\\{([a-z_,]*)\\})?`").FindAllStringSubmatch(text[start:start+end], -1) {
		var labels []string
		if m[2] != "" {
			labels = strings.Split(m[2], ",")
		}
		documented[m[1]] = labels
	}

	// The registry as run builds it, probes included (they are registered by app.Open).
	a := buildAPI(t, map[string]string{"DATA_DIR": t.TempDir()})
	descs := make(chan *prometheus.Desc, 256)
	go func() {
		a.env.Metrics.Registry.Describe(descs)
		close(descs)
	}()
	descRe := regexp.MustCompile(`fqName: "([^"]+)".*variableLabels: \{([^}]*)\}`)
	registered := map[string][]string{}
	for d := range descs {
		m := descRe.FindStringSubmatch(d.String())
		if m == nil || !strings.HasPrefix(m[1], "dispatch24_") {
			continue
		}
		var labels []string
		if m[2] != "" {
			labels = strings.Split(m[2], ",")
		}
		registered[m[1]] = labels
	}
	if len(registered) < 10 {
		t.Fatalf("only %d dispatch24_ series described: %v", len(registered), registered)
	}
	for name, labels := range registered {
		doc, ok := documented[name]
		switch {
		case !ok:
			t.Errorf("%s%v is registered but not in the README", name, labels)
		case !slices.Equal(doc, labels):
			t.Errorf("README says %s{%s}, the registry has labels {%s}", name, strings.Join(doc, ","), strings.Join(labels, ","))
		}
	}
	for name := range documented {
		if _, ok := registered[name]; !ok {
			t.Errorf("README lists %s, which is not registered", name)
		}
	}
}
