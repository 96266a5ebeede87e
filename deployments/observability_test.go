package deployments_test

import (
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
	"go.yaml.in/yaml/v4"

	"github.com/dispatch24/dispatch24/deployments/observability"
)

const observabilityProfile = "observability"

// hostPathOf returns the file or directory of this repository that a bind mount of s provides
// at containerPath, and whether that mount is read-only.
func hostPathOf(t *testing.T, name string, s types.ServiceConfig, containerPath string) (string, bool) {
	t.Helper()
	best, hostPath, ro := "", "", false
	for _, v := range s.Volumes {
		if v.Type != types.VolumeTypeBind {
			continue
		}
		rel, err := filepath.Rel(v.Target, containerPath)
		if err != nil || strings.HasPrefix(rel, "..") || len(v.Target) < len(best) {
			continue
		}
		best, hostPath, ro = v.Target, filepath.Join(v.Source, rel), v.ReadOnly
	}
	if hostPath == "" {
		t.Fatalf("%s: no bind mount provides %s", name, containerPath)
	}
	return hostPath, ro
}

func readYAML(t *testing.T, path string, into any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, into); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// observabilityFile is the absolute path of a file of deployments/observability.
func observabilityFile(t *testing.T, rel string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("observability", rel))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestComposeObservabilityOptional: Prometheus and Grafana start only with --profile
// observability, and the stack itself needs neither.
func TestComposeObservabilityOptional(t *testing.T) {
	t.Parallel()
	p := setupCompose(t)
	for _, name := range []string{"prometheus", "grafana"} {
		if _, ok := p.Services[name]; ok {
			t.Errorf("%s runs without --profile %s", name, observabilityProfile)
		}
		if _, ok := p.DisabledServices[name]; !ok {
			t.Errorf("%s is no service of the %s profile", name, observabilityProfile)
		}
	}
	for name, s := range p.Services {
		if len(s.Profiles) > 0 {
			t.Errorf("%s is enabled but has profiles %v", name, s.Profiles)
		}
	}
}

// TestComposeObservability: with the profile, Prometheus loads the alerting rules (and not
// their unit tests) and scrapes the api and every dispatcher replica on the port of their
// HTTP_ADDR, and Grafana is provisioned with that Prometheus and the dashboard, from this
// repository's files; both are published on 127.0.0.1 only.
func TestComposeObservability(t *testing.T) {
	t.Parallel()
	p, err := loadCompose(t, composeEnv(), observabilityProfile)
	if err != nil {
		t.Fatal(err)
	}
	prom, okP := p.Services["prometheus"]
	graf, okG := p.Services["grafana"]
	if !okP || !okG {
		t.Fatalf("with --profile %s: prometheus %v, grafana %v, want both", observabilityProfile, okP, okG)
	}
	for name, s := range map[string]types.ServiceConfig{"prometheus": prom, "grafana": graf} {
		if !slices.Equal(s.Profiles, []string{observabilityProfile}) {
			t.Errorf("%s: profiles %v, want [%s]", name, s.Profiles, observabilityProfile)
		}
		if len(s.Ports) == 0 {
			t.Errorf("%s: no published port", name)
		}
		for _, pc := range s.Ports {
			if pc.HostIP != "127.0.0.1" {
				t.Errorf("%s: port %d published on %q, want 127.0.0.1", name, pc.Target, pc.HostIP)
			}
		}
		healthcheckCommand(t, name, s)
		serviceEnv(t, name, s)
	}

	promPort := checkPrometheus(t, p, prom)
	checkGrafana(t, graf, promPort)
	checkHealthyDependencies(t, p, "grafana", graf, []string{"prometheus"})
}

// checkPrometheus checks the prometheus service and its configuration, returning the port it
// listens on.
func checkPrometheus(t *testing.T, p *types.Project, prom types.ServiceConfig) int {
	t.Helper()
	flags := map[string]string{}
	for _, arg := range prom.Command {
		k, v, _ := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		flags[k] = v
	}
	listen := 9090
	if addr := flags["web.listen-address"]; addr != "" {
		_, port, _ := net.SplitHostPort(addr)
		listen, _ = strconv.Atoi(port)
	}
	if !slices.ContainsFunc(prom.Ports, func(pc types.ServicePortConfig) bool { return int(pc.Target) == listen }) {
		t.Errorf("prometheus: port %d not published", listen)
	}
	if hc := healthcheckCommand(t, "prometheus", prom); !strings.Contains(hc, "127.0.0.1:"+strconv.Itoa(listen)+"/-/ready") {
		t.Errorf("prometheus: healthcheck %q does not probe /-/ready on %d", hc, listen)
	}

	cfgPath := flags["config.file"]
	if cfgPath == "" {
		t.Fatalf("prometheus: command %v has no --config.file", prom.Command)
	}
	host, ro := hostPathOf(t, "prometheus", prom, cfgPath)
	if want := observabilityFile(t, observability.PrometheusCfg); host != want || !ro {
		t.Errorf("prometheus: %s comes from %s (read-only %v), want %s read-only", cfgPath, host, ro, want)
	}
	var cfg struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			MetricsPath   string `yaml:"metrics_path"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
			DNSSDConfigs []struct {
				Names []string `yaml:"names"`
				Type  string   `yaml:"type"`
				Port  int      `yaml:"port"`
			} `yaml:"dns_sd_configs"`
		} `yaml:"scrape_configs"`
	}
	readYAML(t, host, &cfg)

	// The rule files: the alerting rules, never their unit tests (not a rule file).
	var loaded []string
	for _, glob := range cfg.RuleFiles {
		dir, ro := hostPathOf(t, "prometheus", prom, filepath.Dir(glob))
		if !ro {
			t.Errorf("prometheus: rules mount %s is writable, want :ro", dir)
		}
		m, err := filepath.Glob(filepath.Join(dir, filepath.Base(glob)))
		if err != nil {
			t.Fatal(err)
		}
		loaded = append(loaded, m...)
	}
	if want := []string{observabilityFile(t, observability.RulesFile)}; !slices.Equal(loaded, want) {
		t.Errorf("prometheus loads rule files %v, want %v", loaded, want)
	}

	// The scrape targets: our services, on the port of their HTTP_ADDR.
	ours := ourServices(p)
	scraped := map[string]string{} // service → job
	for _, sc := range cfg.ScrapeConfigs {
		if sc.MetricsPath != "" && sc.MetricsPath != "/metrics" {
			t.Errorf("job %s: metrics_path %q, want /metrics", sc.JobName, sc.MetricsPath)
		}
		type target struct {
			host string
			port int
			dns  bool
		}
		var targets []target
		for _, st := range sc.StaticConfigs {
			for _, tg := range st.Targets {
				h, port, err := net.SplitHostPort(tg)
				n, _ := strconv.Atoi(port)
				if err != nil {
					t.Errorf("job %s: target %q: %v", sc.JobName, tg, err)
				}
				targets = append(targets, target{h, n, false})
			}
		}
		for _, d := range sc.DNSSDConfigs {
			if d.Type != "A" {
				t.Errorf("job %s: dns_sd type %q, want A (one address per replica)", sc.JobName, d.Type)
			}
			for _, n := range d.Names {
				targets = append(targets, target{n, d.Port, true})
			}
		}
		for _, tg := range targets {
			s, ok := ours[tg.host]
			if !ok {
				t.Errorf("job %s: target %s is none of the api or dispatcher services", sc.JobName, tg.host)
				continue
			}
			scraped[tg.host] = sc.JobName
			_, port, _ := net.SplitHostPort(serviceEnv(t, tg.host, s)["HTTP_ADDR"])
			if strconv.Itoa(tg.port) != port {
				t.Errorf("job %s: scrapes %s on %d, but its HTTP_ADDR listens on %s", sc.JobName, tg.host, tg.port, port)
			}
			if s.GetScale() > 1 && !tg.dns {
				t.Errorf("job %s: %s has %d replicas; a static target reaches one of them, use dns_sd_configs", sc.JobName, tg.host, s.GetScale())
			}
		}
	}
	for name, s := range ours {
		// The rules and the dashboard use these job names.
		if want := "dispatch24-" + s.Command[0]; scraped[name] != want {
			t.Errorf("%s: scraped by job %q, want %q", name, scraped[name], want)
		}
	}
	return listen
}

// checkGrafana checks the grafana service's provisioning: the datasource is the profile's
// Prometheus, and the dashboard provider loads deployments/observability's dashboard.
func checkGrafana(t *testing.T, graf types.ServiceConfig, promPort int) {
	t.Helper()
	const prov = "/etc/grafana/provisioning"

	dsDir, ro := hostPathOf(t, "grafana", graf, prov+"/datasources")
	if !ro {
		t.Errorf("grafana: %s is writable, want :ro", dsDir)
	}
	dsFiles, _ := filepath.Glob(filepath.Join(dsDir, "*.yml"))
	if len(dsFiles) != 1 {
		t.Fatalf("grafana: datasource files %v, want one", dsFiles)
	}
	var ds struct {
		Datasources []struct {
			Type      string `yaml:"type"`
			URL       string `yaml:"url"`
			IsDefault bool   `yaml:"isDefault"`
		} `yaml:"datasources"`
	}
	readYAML(t, dsFiles[0], &ds)
	if len(ds.Datasources) != 1 {
		t.Fatalf("grafana: %d datasources, want 1", len(ds.Datasources))
	}
	d := ds.Datasources[0]
	u, err := url.Parse(d.URL)
	if err != nil || d.Type != "prometheus" || u.Hostname() != "prometheus" || u.Port() != strconv.Itoa(promPort) || !d.IsDefault {
		t.Errorf("grafana: datasource %+v, want the default, of type prometheus at http://prometheus:%d", d, promPort)
	}

	dbDir, ro := hostPathOf(t, "grafana", graf, prov+"/dashboards")
	if !ro {
		t.Errorf("grafana: %s is writable, want :ro", dbDir)
	}
	provFiles, _ := filepath.Glob(filepath.Join(dbDir, "*.yml"))
	if len(provFiles) != 1 {
		t.Fatalf("grafana: dashboard provider files %v, want one", provFiles)
	}
	var providers struct {
		Providers []struct {
			Type    string `yaml:"type"`
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, provFiles[0], &providers)
	if len(providers.Providers) != 1 || providers.Providers[0].Type != "file" {
		t.Fatalf("grafana: providers %+v, want one of type file", providers.Providers)
	}
	dashDir, ro := hostPathOf(t, "grafana", graf, providers.Providers[0].Options.Path)
	if !ro {
		t.Errorf("grafana: dashboards mount %s is writable, want :ro", dashDir)
	}
	dashboards, _ := filepath.Glob(filepath.Join(dashDir, "*.json"))
	if want := []string{observabilityFile(t, observability.DashboardFile)}; !slices.Equal(dashboards, want) {
		t.Errorf("grafana: the provider loads %v, want %v", dashboards, want)
	}
	if home := serviceEnv(t, "grafana", graf)["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]; home != "" {
		if h, _ := hostPathOf(t, "grafana", graf, home); h != observabilityFile(t, observability.DashboardFile) {
			t.Errorf("grafana: home dashboard %s is %s, want the Dispatch24 dashboard", home, h)
		}
	}
}
