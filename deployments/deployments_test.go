package deployments_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/nats-io/nats-server/v2/server"
	"go.yaml.in/yaml/v4"

	"github.com/dispatch24/dispatch24/internal/config"
)

// natsNodes are the NATS cluster's compose services, which are also its server names.
func natsNodes() []string { return []string{"nats-1", "nats-2", "nats-3"} }

// minNATS is the oldest nats-server the project supports (README, compose and conf comments).
const minNATSMajor, minNATSMinor = 2, 10

// composeEnv is the environment the compose file is interpolated with: what an operator sets.
func composeEnv() map[string]string {
	return map[string]string{
		"TOKEN_SECRET":      "test-token-secret-0123456789abcdef0123456789",
		"SECRETS_KEY":       "nT2Q7vX9cR4kLm8pW1sY6bZ3hJ0gF5dA2eU7iO4tK9w=",
		"POSTGRES_PASSWORD": "pw-from-test",
	}
}

// loadCompose loads ../docker-compose.yml with the compose-spec loader (the one docker compose
// uses), interpolating from env only: the developer's own environment and any .env file are
// ignored, so the test sees the same file on every machine. profiles are enabled as with
// --profile.
func loadCompose(t *testing.T, env map[string]string, profiles ...string) (*types.Project, error) {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	pairs := make([]string, 0, len(env))
	for k, v := range env {
		pairs = append(pairs, k+"="+v)
	}
	opts, err := cli.NewProjectOptions(
		[]string{filepath.Join(root, "docker-compose.yml")},
		cli.WithWorkingDirectory(root),
		cli.WithEnv(pairs),
		cli.WithInterpolation(true),
		cli.WithResolvedPaths(true),
		cli.WithProfiles(profiles),
	)
	if err != nil {
		return nil, fmt.Errorf("compose options: %w", err)
	}
	return opts.LoadProject(context.Background())
}

// setupCompose loads the compose project with composeEnv, failing the test on error.
func setupCompose(t *testing.T) *types.Project {
	t.Helper()
	p, err := loadCompose(t, composeEnv())
	if err != nil {
		t.Fatalf("loading docker-compose.yml: %v", err)
	}
	return p
}

func configVarNames() map[string]bool {
	names := make(map[string]bool, len(config.Vars))
	for _, v := range config.Vars {
		names[v.Name] = true
	}
	return names
}

// ourServices are the compose services running our image: the api and every dispatcher.
func ourServices(p *types.Project) map[string]types.ServiceConfig {
	out := map[string]types.ServiceConfig{}
	for name, s := range p.Services {
		if len(s.Command) > 0 && (s.Command[0] == "api" || s.Command[0] == "dispatcher") {
			out[name] = s
		}
	}
	return out
}

// serviceEnv returns a service's environment; a variable without a value (passed through from
// the host) fails the test, because the stack must not depend on the operator's shell.
func serviceEnv(t *testing.T, name string, s types.ServiceConfig) map[string]string {
	t.Helper()
	env := make(map[string]string, len(s.Environment))
	for k, v := range s.Environment {
		if v == nil {
			t.Errorf("%s: %s has no value (would be taken from the host environment)", name, k)
			continue
		}
		env[k] = *v
	}
	return env
}

// loadConfig runs the real configuration loader on env, as the binary would at start.
func loadConfig(name string, env map[string]string) (*config.Config, error) {
	return config.Load(name, nil, func(k string) string { return env[k] }, 2, io.Discard)
}

func healthcheckCommand(t *testing.T, name string, s types.ServiceConfig) string {
	t.Helper()
	if s.HealthCheck == nil || len(s.HealthCheck.Test) < 2 {
		t.Fatalf("%s: no healthcheck", name)
	}
	if s.HealthCheck.Disable {
		t.Fatalf("%s: healthcheck disabled", name)
	}
	if kind := s.HealthCheck.Test[0]; kind != "CMD" {
		t.Errorf("%s: healthcheck is %s, want exec form CMD (images without a shell)", name, kind)
	}
	return strings.Join(s.HealthCheck.Test[1:], " ")
}

func TestComposeServices(t *testing.T) {
	t.Parallel()
	p := setupCompose(t)

	want := append([]string{"postgres", "api"}, natsNodes()...)
	for _, name := range want {
		if _, ok := p.Services[name]; !ok {
			t.Errorf("service %s missing", name)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	pg := p.Services["postgres"]
	if _, tag, _ := strings.Cut(pg.Image, ":"); !strings.HasPrefix(pg.Image, "postgres:") || !strings.HasPrefix(tag, "15") {
		t.Errorf("postgres image = %q, want postgres:15…", pg.Image)
	}
	if hc := healthcheckCommand(t, "postgres", pg); !strings.HasPrefix(hc, "pg_isready") {
		t.Errorf("postgres healthcheck = %q, want pg_isready", hc)
	}
	if !slices.ContainsFunc(pg.Volumes, func(v types.ServiceVolumeConfig) bool {
		return v.Type == types.VolumeTypeVolume && v.Target == "/var/lib/postgresql/data"
	}) {
		t.Errorf("postgres: no named volume on /var/lib/postgresql/data")
	}
}

func TestComposeRequiresTokenSecret(t *testing.T) {
	t.Parallel()
	env := composeEnv()
	delete(env, "TOKEN_SECRET")
	_, err := loadCompose(t, env)
	if err == nil || !strings.Contains(err.Error(), "TOKEN_SECRET") {
		t.Fatalf("loading without TOKEN_SECRET: err = %v, want a required-variable error naming TOKEN_SECRET", err)
	}
}

func TestComposeRequiresSecretsKey(t *testing.T) {
	t.Parallel()
	env := composeEnv()
	delete(env, "SECRETS_KEY")
	_, err := loadCompose(t, env)
	if err == nil || !strings.Contains(err.Error(), "SECRETS_KEY") {
		t.Fatalf("loading without SECRETS_KEY: err = %v, want a required-variable error naming SECRETS_KEY", err)
	}
}

func TestComposeEnvironment(t *testing.T) {
	t.Parallel()
	p := setupCompose(t)
	known := configVarNames()

	ours := ourServices(p)
	if _, ok := ours["api"]; !ok {
		t.Fatal(`service api does not run command "api"`)
	}
	for name, s := range ours {
		env := serviceEnv(t, name, s)
		for k := range env {
			if !known[k] {
				t.Errorf("%s: environment variable %s is not in config.Vars", name, k)
			}
		}
		// The binaries' own loader must accept the environment as it stands.
		cfg, err := loadConfig(name, env)
		if err != nil {
			t.Errorf("%s: config.Load rejects the compose environment: %v", name, err)
			continue
		}
		if cfg.EmbeddedStore() || cfg.Embedded {
			t.Errorf("%s: runs embedded (store embedded=%v, NATS embedded=%v), want PostgreSQL and external NATS",
				name, cfg.EmbeddedStore(), cfg.Embedded)
		}
		if cfg.DispatchInProcess {
			t.Errorf("%s: DISPATCH_IN_PROCESS is on; workers belong to the dispatcher service", name)
		}
		if cfg.LogFormat != "json" {
			t.Errorf("%s: LOG_FORMAT = %q, want json", name, cfg.LogFormat)
		}
		if host, _, _ := net.SplitHostPort(cfg.HTTPAddr); host != "0.0.0.0" && host != "" {
			t.Errorf("%s: HTTP_ADDR = %q, want all interfaces inside the container", name, cfg.HTTPAddr)
		}
		// Least privilege: only the api signs and verifies tokens.
		switch _, has := env["TOKEN_SECRET"]; {
		case name == "api" && cfg.TokenSecret != composeEnv()["TOKEN_SECRET"]:
			t.Errorf("%s: TOKEN_SECRET is not taken from the operator's environment", name)
		case name != "api" && has:
			t.Errorf("%s: is given TOKEN_SECRET, which only the api needs", name)
		}
		if env["SECRETS_KEY"] != composeEnv()["SECRETS_KEY"] || len(cfg.SecretsKey) != 32 {
			t.Errorf("%s: SECRETS_KEY is not taken from the operator's environment", name)
		}
	}
	api := serviceEnv(t, "api", p.Services["api"])
	if u, err := url.Parse(api["PUBLIC_URL"]); err != nil || u.Host == "" {
		t.Errorf("api: PUBLIC_URL = %q, want an absolute URL", api["PUBLIC_URL"])
	}
}

func TestComposeDatabaseURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		password string // POSTGRES_PASSWORD in the operator's environment; "" = unset
	}{
		{"password set", "pw-from-test"},
		{"development default", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := composeEnv()
			delete(env, "POSTGRES_PASSWORD")
			if tc.password != "" {
				env["POSTGRES_PASSWORD"] = tc.password
			}
			p, err := loadCompose(t, env)
			if err != nil {
				t.Fatal(err)
			}
			pg := serviceEnv(t, "postgres", p.Services["postgres"])
			if tc.password != "" && pg["POSTGRES_PASSWORD"] != tc.password {
				t.Errorf("postgres: POSTGRES_PASSWORD = %q, want %q", pg["POSTGRES_PASSWORD"], tc.password)
			}
			for name, s := range ourServices(p) {
				raw := serviceEnv(t, name, s)["DATABASE_URL"]
				u, err := url.Parse(raw)
				if err != nil {
					t.Errorf("%s: DATABASE_URL %q: %v", name, config.RedactURL(raw), err)
					continue
				}
				if u.Scheme != "postgres" && u.Scheme != "postgresql" {
					t.Errorf("%s: DATABASE_URL scheme %q, want postgres", name, u.Scheme)
				}
				if u.Hostname() != "postgres" || u.Port() != "5432" {
					t.Errorf("%s: DATABASE_URL host %q, want the postgres service on 5432", name, u.Host)
				}
				pass, _ := u.User.Password()
				if u.User.Username() != pg["POSTGRES_USER"] || pass != pg["POSTGRES_PASSWORD"] {
					t.Errorf("%s: DATABASE_URL credentials do not match the postgres service's POSTGRES_USER/POSTGRES_PASSWORD", name)
				}
				if db := strings.TrimPrefix(u.Path, "/"); db != pg["POSTGRES_DB"] {
					t.Errorf("%s: DATABASE_URL database %q, want POSTGRES_DB %q", name, db, pg["POSTGRES_DB"])
				}
			}
		})
	}
}

func TestComposeNATSURL(t *testing.T) {
	t.Parallel()
	p := setupCompose(t)
	for name, s := range ourServices(p) {
		raw := serviceEnv(t, name, s)["NATS_URL"]
		var hosts []string
		for _, part := range strings.Split(raw, ",") {
			u, err := url.Parse(strings.TrimSpace(part))
			if err != nil {
				t.Errorf("%s: NATS_URL entry %q: %v", name, part, err)
				continue
			}
			if u.Scheme != "nats" || u.Port() != "4222" {
				t.Errorf("%s: NATS_URL entry %q, want nats://<node>:4222", name, part)
			}
			if _, ok := p.Services[u.Hostname()]; !ok {
				t.Errorf("%s: NATS_URL names %q, which is no compose service", name, u.Hostname())
			}
			hosts = append(hosts, u.Hostname())
		}
		slices.Sort(hosts)
		if !slices.Equal(hosts, natsNodes()) {
			t.Errorf("%s: NATS_URL lists %v, want %v", name, hosts, natsNodes())
		}
	}
}

func TestComposeAPI(t *testing.T) {
	t.Parallel()
	p := setupCompose(t)
	api := p.Services["api"]

	if !slices.Equal(api.Command, []string{"api"}) {
		t.Errorf("api: command = %v, want [api]", api.Command)
	}
	root, _ := filepath.Abs("..")
	if api.Build == nil || filepath.Clean(api.Build.Context) != root {
		t.Errorf("api: build = %+v, want the repository root", api.Build)
	}
	checkReadyzHealthcheck(t, "api", api)

	checkBackingDependencies(t, p, "api", api)

	if !slices.ContainsFunc(api.Ports, func(pc types.ServicePortConfig) bool { return pc.Target == 8080 }) {
		t.Errorf("api: container port 8080 not published")
	}
}

// checkReadyzHealthcheck asserts the service probes /readyz on the port of its own HTTP_ADDR.
func checkReadyzHealthcheck(t *testing.T, name string, s types.ServiceConfig) {
	t.Helper()
	hc := healthcheckCommand(t, name, s)
	_, port, err := net.SplitHostPort(serviceEnv(t, name, s)["HTTP_ADDR"])
	if err != nil {
		t.Fatalf("%s: HTTP_ADDR: %v", name, err)
	}
	if want := "http://127.0.0.1:" + port + "/readyz"; !strings.Contains(hc, want) {
		t.Errorf("%s: healthcheck %q does not probe %s", name, hc, want)
	}
}

// checkBackingDependencies asserts s waits for PostgreSQL to be healthy (migrations run at
// start) but only for the NATS nodes to be started: both binaries start and stay up without
// NATS (the api accepts into the outbox, the dispatcher waits for its consumer), so waiting
// for NATS's health would only keep them down while a node is unhealthy at `up`.
func checkBackingDependencies(t *testing.T, p *types.Project, name string, s types.ServiceConfig) {
	t.Helper()
	checkHealthyDependencies(t, p, name, s, []string{"postgres"})
	for _, dep := range natsNodes() {
		d, ok := s.DependsOn[dep]
		if !ok {
			t.Errorf("%s: does not depend on %s", name, dep)
			continue
		}
		if d.Condition != types.ServiceConditionStarted {
			t.Errorf("%s: depends on %s with condition %q, want %s", name, dep, d.Condition, types.ServiceConditionStarted)
		}
	}
}

// checkHealthyDependencies asserts s waits for each of deps to be healthy, and that each has a
// healthcheck (service_healthy on a service without one never starts).
func checkHealthyDependencies(t *testing.T, p *types.Project, name string, s types.ServiceConfig, deps []string) {
	t.Helper()
	for _, dep := range deps {
		d, ok := s.DependsOn[dep]
		if !ok {
			t.Errorf("%s: does not depend on %s", name, dep)
			continue
		}
		if d.Condition != types.ServiceConditionHealthy {
			t.Errorf("%s: depends on %s with condition %q, want %s", name, dep, d.Condition, types.ServiceConditionHealthy)
		}
		if hc := p.Services[dep].HealthCheck; hc == nil || hc.Disable || len(hc.Test) == 0 {
			t.Errorf("%s: waits for %s to be healthy, but %s has no healthcheck", name, dep, dep)
		}
	}
}

func TestComposeDispatchers(t *testing.T) {
	t.Parallel()
	p := setupCompose(t)
	apiEnv := serviceEnv(t, "api", p.Services["api"])

	total := 0
	for name, s := range ourServices(p) {
		if s.Command[0] != "dispatcher" {
			continue
		}
		if len(s.Command) != 1 {
			t.Errorf("%s: command = %v, want [dispatcher] (the workers, no subcommand)", name, s.Command)
		}
		if s.Image != p.Services["api"].Image {
			t.Errorf("%s: image %q differs from the api's %q", name, s.Image, p.Services["api"].Image)
		}
		if s.ContainerName != "" && s.GetScale() > 1 {
			t.Errorf("%s: container_name set on a replicated service", name)
		}
		total += s.GetScale()

		env := serviceEnv(t, name, s)
		for _, k := range []string{"DATABASE_URL", "NATS_URL", "SECRETS_KEY", "SECRETS_KEY_PREVIOUS"} {
			if env[k] != apiEnv[k] {
				t.Errorf("%s: %s differs from the api's", name, k)
			}
		}
		if _, has := env["TOKEN_SECRET"]; has {
			t.Errorf("%s: is given TOKEN_SECRET, which only the api needs", name)
		}
		checkReadyzHealthcheck(t, name, s)
		checkBackingDependencies(t, p, name, s)
	}
	if total != 2 {
		t.Errorf("dispatcher processes = %d, want 2", total)
	}
}

func TestComposeNATS(t *testing.T) {
	t.Parallel()
	p := setupCompose(t)
	for _, name := range natsNodes() {
		s, ok := p.Services[name]
		if !ok {
			t.Errorf("service %s missing", name)
			continue
		}
		checkNATSImage(t, name, s.Image)

		// The config file named on the command line must come from a bind mount of this
		// repository and exist on disk.
		i := slices.Index(s.Command, "--config")
		if i < 0 || i+1 >= len(s.Command) {
			t.Errorf("%s: command %v has no --config", name, s.Command)
			continue
		}
		confInContainer := s.Command[i+1]
		hostPath := ""
		for _, v := range s.Volumes {
			if v.Type != types.VolumeTypeBind {
				continue
			}
			rel, err := filepath.Rel(v.Target, confInContainer)
			if err != nil || strings.HasPrefix(rel, "..") {
				continue
			}
			hostPath = filepath.Join(v.Source, rel)
			if !v.ReadOnly {
				t.Errorf("%s: config mount %s is writable, want :ro", name, v.Source)
			}
		}
		if hostPath == "" {
			t.Errorf("%s: no bind mount provides %s", name, confInContainer)
			continue
		}
		if fi, err := os.Stat(hostPath); err != nil || !fi.Mode().IsRegular() {
			t.Errorf("%s: mounted config %s is not a file: %v", name, hostPath, err)
			continue
		}

		opts, err := server.ProcessConfigFile(hostPath)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if opts.ServerName != name {
			t.Errorf("%s: mounts the config of server %q", name, opts.ServerName)
		}
		// JetStream's store must sit on a named volume, or a restart loses every stream.
		if !slices.ContainsFunc(s.Volumes, func(v types.ServiceVolumeConfig) bool {
			return v.Type == types.VolumeTypeVolume && v.Target == opts.StoreDir
		}) {
			t.Errorf("%s: no named volume on the JetStream store_dir %s", name, opts.StoreDir)
		}
		hc := healthcheckCommand(t, name, s)
		if want := fmt.Sprintf("http://127.0.0.1:%d/healthz?js-enabled-only=true", opts.HTTPPort); !strings.Contains(hc, want) {
			t.Errorf("%s: healthcheck %q does not probe %s", name, hc, want)
		}
	}
}

// checkNATSImage asserts a nats image tag is the supported minimum or newer.
func checkNATSImage(t *testing.T, name, image string) {
	t.Helper()
	repo, tag, _ := strings.Cut(image, ":")
	if repo != "nats" {
		t.Errorf("%s: image %q, want nats:<version>", name, image)
		return
	}
	ver, _, _ := strings.Cut(tag, "-")
	parts := strings.SplitN(ver, ".", 3)
	if len(parts) < 2 {
		t.Errorf("%s: image %q has no major.minor version tag", name, image)
		return
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(parts[1])
	if err := errors.Join(err1, err2); err != nil {
		t.Errorf("%s: image %q: %v", name, image, err)
		return
	}
	if major < minNATSMajor || (major == minNATSMajor && minor < minNATSMinor) {
		t.Errorf("%s: image %q is older than nats-server %d.%d", name, image, minNATSMajor, minNATSMinor)
	}
}

func TestNATSClusterConfig(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join("nats", "nats-*.conf"))
	if err != nil {
		t.Fatal(err)
	}
	var servers []string
	clusters := map[string]bool{}
	for _, f := range files {
		opts, err := server.ProcessConfigFile(f)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		servers = append(servers, opts.ServerName)
		clusters[opts.Cluster.Name] = true

		if want := strings.TrimSuffix(filepath.Base(f), ".conf"); opts.ServerName != want {
			t.Errorf("%s: server_name %q, want %q", f, opts.ServerName, want)
		}
		if !opts.JetStream || opts.StoreDir == "" {
			t.Errorf("%s: JetStream %v with store_dir %q, want enabled with a file store", f, opts.JetStream, opts.StoreDir)
		}
		if opts.JetStreamMaxMemory <= 0 || opts.JetStreamMaxStore <= 0 {
			t.Errorf("%s: JetStream limits memory=%d file=%d, want explicit limits", f, opts.JetStreamMaxMemory, opts.JetStreamMaxStore)
		}
		if opts.HTTPPort != 8222 {
			t.Errorf("%s: monitoring port %d, want 8222", f, opts.HTTPPort)
		}
		if opts.Port != 4222 {
			t.Errorf("%s: client port %d, want 4222 (NATS_URL uses it)", f, opts.Port)
		}
		// A 1 MiB submission travels inside its event, with the envelope around it.
		if opts.MaxPayload < 2<<20 {
			t.Errorf("%s: max_payload %d, want at least 2 MiB", f, opts.MaxPayload)
		}

		var routes []string
		for _, r := range opts.Routes {
			if r.Port() != strconv.Itoa(opts.Cluster.Port) {
				t.Errorf("%s: route %s is not on the cluster port %d", f, r, opts.Cluster.Port)
			}
			routes = append(routes, r.Hostname())
		}
		slices.Sort(routes)
		if !slices.Equal(routes, natsNodes()) {
			t.Errorf("%s: routes to %v, want %v", f, routes, natsNodes())
		}

		// The server's own validation (cluster name, server name with clustered JetStream,
		// lame duck timings…) without starting it.
		opts.StoreDir = t.TempDir()
		s, err := server.NewServer(opts)
		if err != nil {
			t.Errorf("%s: nats-server rejects the options: %v", f, err)
			continue
		}
		s.Shutdown()
	}
	slices.Sort(servers)
	if !slices.Equal(servers, natsNodes()) {
		t.Errorf("NATS configs for servers %v, want %v", servers, natsNodes())
	}
	if len(clusters) != 1 || clusters[""] {
		t.Errorf("cluster names %v, want one shared non-empty name", clusters)
	}
}

// k8sObject is the part of a Kubernetes object (or a Kustomization) the tests read.
type k8sObject struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Data       map[string]string `yaml:"data"`
	StringData map[string]string `yaml:"stringData"`
	Resources  []string          `yaml:"resources"`
	Spec       struct {
		Replicas *int `yaml:"replicas"`
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec struct {
				Containers []k8sContainer `yaml:"containers"`
			} `yaml:"spec"`
		} `yaml:"template"`
		// Service.
		Ports []struct {
			Port       int    `yaml:"port"`
			TargetPort string `yaml:"targetPort"`
		} `yaml:"ports"`
	} `yaml:"spec"`
	// serviceSelector is a Service's spec.selector, a plain map where a Deployment has matchLabels.
	serviceSelector map[string]string
}

type k8sPort struct {
	Name          string `yaml:"name"`
	ContainerPort int    `yaml:"containerPort"`
}

type k8sContainer struct {
	Name    string    `yaml:"name"`
	Image   string    `yaml:"image"`
	Command []string  `yaml:"command"`
	Ports   []k8sPort `yaml:"ports"`
	EnvFrom []struct {
		ConfigMapRef *struct {
			Name string `yaml:"name"`
		} `yaml:"configMapRef"`
		SecretRef *struct {
			Name string `yaml:"name"`
		} `yaml:"secretRef"`
	} `yaml:"envFrom"`
	Env []struct {
		Name      string  `yaml:"name"`
		Value     *string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef *struct {
				Name string `yaml:"name"`
				Key  string `yaml:"key"`
			} `yaml:"secretKeyRef"`
			ConfigMapKeyRef *struct {
				Name string `yaml:"name"`
				Key  string `yaml:"key"`
			} `yaml:"configMapKeyRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	ReadinessProbe *k8sProbe `yaml:"readinessProbe"`
	LivenessProbe  *k8sProbe `yaml:"livenessProbe"`
	StartupProbe   *k8sProbe `yaml:"startupProbe"`
}

type k8sProbe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
}

// loadK8s decodes every document of every YAML file under kubernetes/.
func loadK8s(t *testing.T) []k8sObject {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("kubernetes", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests under kubernetes/: %v", err)
	}
	var objs []k8sObject
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var doc yaml.Node
			err := dec.Decode(&doc)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			var o k8sObject
			if err := doc.Decode(&o); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if o.Kind == "" {
				continue // an empty document
			}
			if o.APIVersion == "" || (o.Metadata.Name == "" && o.Kind != "Kustomization") {
				t.Errorf("%s: %s without apiVersion or metadata.name", f, o.Kind)
			}
			if o.Kind == "Service" {
				var svc struct {
					Spec struct {
						Selector map[string]string `yaml:"selector"`
					} `yaml:"spec"`
				}
				if err := doc.Decode(&svc); err != nil {
					t.Fatalf("%s: %v", f, err)
				}
				o.serviceSelector = svc.Spec.Selector
			}
			objs = append(objs, o)
		}
	}
	return objs
}

func TestKubernetesManifests(t *testing.T) {
	t.Parallel()
	objs := loadK8s(t)
	known := configVarNames()

	byKind := map[string][]k8sObject{}
	for _, o := range objs {
		byKind[o.Kind] = append(byKind[o.Kind], o)
	}
	for kind, n := range map[string]int{"Kustomization": 1, "ConfigMap": 1, "Secret": 1, "Deployment": 2, "Service": 1} {
		if got := len(byKind[kind]); got != n {
			t.Errorf("%d %s objects, want %d", got, kind, n)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// The kustomization applies what exists, and never the example Secret.
	kust := byKind["Kustomization"][0]
	for _, r := range kust.Resources {
		if _, err := os.Stat(filepath.Join("kubernetes", r)); err != nil {
			t.Errorf("kustomization lists %s: %v", r, err)
		}
		if strings.Contains(r, "secret") {
			t.Errorf("kustomization applies %s; secrets are created out of band", r)
		}
	}

	cm, secret := byKind["ConfigMap"][0], byKind["Secret"][0]
	for k := range cm.Data {
		if !known[k] {
			t.Errorf("ConfigMap %s: key %s is not in config.Vars", cm.Metadata.Name, k)
		}
	}
	for _, k := range []string{"DATABASE_URL", "TOKEN_SECRET", "SECRETS_KEY"} {
		if _, ok := secret.StringData[k]; !ok {
			t.Errorf("Secret %s: no %s", secret.Metadata.Name, k)
		}
	}

	deployments := map[string]k8sObject{}
	for _, d := range byKind["Deployment"] {
		deployments[d.Metadata.Name] = d
	}
	for name, wantReplicas := range map[string]int{"api": 0, "dispatcher": 2} {
		d, ok := deployments[name]
		if !ok {
			t.Errorf("no Deployment %s", name)
			continue
		}
		if wantReplicas > 0 {
			if got := d.Spec.Replicas; got == nil || *got != wantReplicas {
				t.Errorf("Deployment %s: replicas %s, want %d", name, fmtIntPtr(got), wantReplicas)
			}
		}
		for k, v := range d.Spec.Selector.MatchLabels {
			if d.Spec.Template.Metadata.Labels[k] != v {
				t.Errorf("Deployment %s: selector %s=%s does not match the pod template", name, k, v)
			}
		}
		if len(d.Spec.Template.Spec.Containers) != 1 {
			t.Errorf("Deployment %s: %d containers, want 1", name, len(d.Spec.Template.Spec.Containers))
			continue
		}
		c := d.Spec.Template.Spec.Containers[0]
		if !slices.Equal(c.Command, []string{name}) {
			t.Errorf("Deployment %s: command %v, want [%s]", name, c.Command, name)
		}
		env := checkK8sEnv(t, name, c, cm, secret, known)
		if _, err := loadConfig(name, env); err != nil {
			t.Errorf("Deployment %s: config.Load rejects its environment: %v", name, err)
		}
		_, port, _ := net.SplitHostPort(env["HTTP_ADDR"])
		checkProbe(t, name, "readiness", c.ReadinessProbe, "/readyz", c, port)
		checkProbe(t, name, "liveness", c.LivenessProbe, "/healthz", c, port)
		// Startup counts towards restarts like liveness: on /readyz a dispatcher started
		// during a NATS outage would be killed for it.
		checkProbe(t, name, "startup", c.StartupProbe, "/healthz", c, port)
	}

	svc := byKind["Service"][0]
	api := deployments["api"]
	if len(svc.Spec.Ports) == 0 {
		t.Errorf("Service %s: no ports", svc.Metadata.Name)
	}
	if len(svc.serviceSelector) == 0 {
		t.Errorf("Service %s: no selector", svc.Metadata.Name)
	}
	for k, v := range svc.serviceSelector {
		if api.Spec.Template.Metadata.Labels[k] != v {
			t.Errorf("Service %s: selector %s=%s does not select the api pods", svc.Metadata.Name, k, v)
		}
	}
	for _, p := range svc.Spec.Ports {
		if !slices.ContainsFunc(api.Spec.Template.Spec.Containers[0].Ports, func(cp k8sPort) bool {
			return cp.Name == p.TargetPort || strconv.Itoa(cp.ContainerPort) == p.TargetPort
		}) {
			t.Errorf("Service %s: targetPort %q is not a port of the api container", svc.Metadata.Name, p.TargetPort)
		}
	}
}

func fmtIntPtr(p *int) string {
	if p == nil {
		return "unset"
	}
	return strconv.Itoa(*p)
}

// checkK8sEnv resolves a container's environment (ConfigMap, Secret references, literals),
// checking every name against config.Vars, and returns it.
func checkK8sEnv(t *testing.T, name string, c k8sContainer, cm, secret k8sObject, known map[string]bool) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, ef := range c.EnvFrom {
		switch {
		case ef.ConfigMapRef != nil && ef.ConfigMapRef.Name == cm.Metadata.Name:
			for k, v := range cm.Data {
				env[k] = v
			}
		default:
			t.Errorf("Deployment %s: envFrom refers to an unknown object", name)
		}
	}
	fromSecret := map[string]bool{}
	for _, e := range c.Env {
		if !known[e.Name] {
			t.Errorf("Deployment %s: environment variable %s is not in config.Vars", name, e.Name)
		}
		switch {
		case e.Value != nil:
			env[e.Name] = *e.Value
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			v, ok := secret.StringData[ref.Key]
			if ref.Name != secret.Metadata.Name || !ok {
				t.Errorf("Deployment %s: %s refers to secret %s key %s, which the example Secret lacks", name, e.Name, ref.Name, ref.Key)
			}
			env[e.Name] = v
			fromSecret[e.Name] = true
		default:
			t.Errorf("Deployment %s: %s has neither a value nor a secret reference", name, e.Name)
		}
	}
	fromSecretWant := []string{"DATABASE_URL", "SECRETS_KEY"}
	if name == "api" {
		fromSecretWant = append(fromSecretWant, "TOKEN_SECRET")
	} else if _, has := env["TOKEN_SECRET"]; has {
		// Least privilege: only the api signs and verifies tokens.
		t.Errorf("Deployment %s: is given TOKEN_SECRET, which only the api needs", name)
	}
	for _, k := range fromSecretWant {
		if !fromSecret[k] {
			t.Errorf("Deployment %s: %s is not read from the Secret", name, k)
		}
	}
	return env
}

func checkProbe(t *testing.T, name, kind string, p *k8sProbe, path string, c k8sContainer, port string) {
	t.Helper()
	if p == nil || p.HTTPGet == nil {
		t.Errorf("Deployment %s: no HTTP %s probe", name, kind)
		return
	}
	if p.HTTPGet.Path != path {
		t.Errorf("Deployment %s: %s probe on %s, want %s", name, kind, p.HTTPGet.Path, path)
	}
	probePort := fmt.Sprint(p.HTTPGet.Port)
	for _, cp := range c.Ports {
		if cp.Name == probePort {
			probePort = strconv.Itoa(cp.ContainerPort)
		}
	}
	if probePort != port {
		t.Errorf("Deployment %s: %s probe on port %s, but HTTP_ADDR listens on %s", name, kind, probePort, port)
	}
}

// dockerInstruction is one instruction of a Dockerfile, continuation lines joined.
type dockerInstruction struct {
	Cmd  string // upper case: FROM, RUN, ENV…
	Args string
}

func parseDockerfile(text string) []dockerInstruction {
	var out []dockerInstruction
	var cur strings.Builder
	flush := func() {
		line := strings.TrimSpace(cur.String())
		cur.Reset()
		if line == "" {
			return
		}
		cmd, args, _ := strings.Cut(line, " ")
		out = append(out, dockerInstruction{Cmd: strings.ToUpper(cmd), Args: strings.TrimSpace(args)})
	}
	for _, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") {
			continue
		}
		if body, ok := strings.CutSuffix(trimmed, "\\"); ok {
			cur.WriteString(body + " ")
			continue
		}
		cur.WriteString(trimmed)
		flush()
	}
	flush()
	return out
}

func TestDockerfile(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join("..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	ins := parseDockerfile(string(b))

	lastFrom, froms := -1, 0
	for i, in := range ins {
		if in.Cmd == "FROM" {
			lastFrom, froms = i, froms+1
		}
		if in.Cmd == "HEALTHCHECK" {
			t.Errorf("Dockerfile has a HEALTHCHECK; the orchestrator probes instead")
		}
	}
	if froms < 2 {
		t.Fatalf("Dockerfile has %d stages, want a multi-stage build", froms)
	}

	var build string
	for _, in := range ins[:lastFrom] {
		if in.Cmd == "RUN" && strings.Contains(in.Args, "go build") {
			build = in.Args
		}
	}
	for _, want := range []string{"-trimpath", "-s -w", "./cmd/api", "./cmd/dispatcher"} {
		if !strings.Contains(build, want) {
			t.Errorf("go build step %q lacks %s", build, want)
		}
	}
	if !strings.Contains(string(b), "CGO_ENABLED=0") {
		t.Errorf("Dockerfile does not build with CGO_ENABLED=0")
	}

	known := configVarNames()
	var user, expose string
	hasVersionArg := false
	for _, in := range ins {
		if in.Cmd == "ARG" && strings.HasPrefix(in.Args, "VERSION") {
			hasVersionArg = true
		}
	}
	for _, in := range ins[lastFrom+1:] {
		switch in.Cmd {
		case "USER":
			user = in.Args
		case "EXPOSE":
			expose = in.Args
		case "ENV":
			for _, kv := range strings.Fields(in.Args) {
				k, _, _ := strings.Cut(kv, "=")
				if !known[k] {
					t.Errorf("runtime ENV %s is not in config.Vars", k)
				}
			}
		}
	}
	if !hasVersionArg {
		t.Errorf("Dockerfile has no VERSION build arg")
	}
	if u, _, _ := strings.Cut(user, ":"); u == "" || u == "root" || u == "0" {
		t.Errorf("runtime USER %q, want a non-root user", user)
	}
	if !slices.Contains(strings.Fields(expose), "8080") {
		t.Errorf("runtime EXPOSE %q, want 8080", expose)
	}
}

func TestDockerignore(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join("..", ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for _, line := range strings.Split(string(b), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			patterns = append(patterns, strings.TrimPrefix(strings.TrimSuffix(line, "/"), "**/"))
		}
	}
	excluded := func(path string) bool {
		for _, p := range patterns {
			// Match the path or any of its leading directories, as the builder does.
			for dir := path; dir != "." && dir != "/"; dir = filepath.Dir(dir) {
				if ok, _ := filepath.Match(p, dir); ok {
					return true
				}
				if ok, _ := filepath.Match(p, filepath.Base(dir)); ok && strings.Contains(p, "*") {
					return true
				}
			}
		}
		return false
	}
	for _, keep := range []string{"go.mod", "go.sum", "cmd/api/main.go", "cmd/dispatcher/main.go", "internal/config/config.go", "pkg/webhook/sign.go"} {
		if excluded(keep) {
			t.Errorf(".dockerignore excludes %s, which the build needs", keep)
		}
	}
	for _, drop := range []string{".git", ".env", "data/dispatch24.db"} {
		if !excluded(drop) {
			t.Errorf(".dockerignore lets %s into the build context", drop)
		}
	}
}
