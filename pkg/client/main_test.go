package client_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/pkg/client"
)

// The real API the tests and the example talk to, started by TestMain: the api binary built
// from this module on an embedded store, with a receiver that is down (every delivery to it
// fails), a survey "demo" and a personal access token of the admin.
var (
	apiURL      string
	token       string // a personal access token of the admin
	receiverURL string // answers every delivery 503
	adminEmail  = "ops@example.org"
	adminPass   = "correct horse battery"
)

func TestMain(m *testing.M) {
	stop, err := startAPI()
	if err != nil {
		fmt.Fprintln(os.Stderr, "pkg/client tests: starting the API:", err)
		os.Exit(1)
	}
	code := m.Run()
	stop()
	os.Exit(code)
}

func startAPI() (stop func(), err error) {
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, "receiver down for maintenance")
	}))
	receiverURL = receiver.URL + "/hooks/dispatch24"
	dir, err := os.MkdirTemp("", "d24-client-test-")
	if err != nil {
		return nil, err
	}
	cleanup := func() { receiver.Close(); _ = os.RemoveAll(dir) }
	bin := filepath.Join(dir, "api")
	build := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", bin, "github.com/dispatch24/dispatch24/cmd/api")
	if out, err := build.CombinedOutput(); err != nil {
		cleanup()
		return nil, fmt.Errorf("building cmd/api: %v\n%s", err, out)
	}
	cmd := exec.Command(bin)
	cmd.Env = []string{
		"DATA_DIR=" + filepath.Join(dir, "data"), "HTTP_ADDR=127.0.0.1:0", "LOG_LEVEL=info",
		"ADMIN_EMAIL=" + adminEmail, "ADMIN_PASSWORD=" + adminPass,
		"WEBHOOK_ALLOW_NETS=127.0.0.0/8", "WEBHOOK_RETRY_SCHEDULE=0s",
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		cleanup()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		cleanup()
		return nil, err
	}
	stop = func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		cleanup()
	}
	listening := regexp.MustCompile(`msg=listening addr=(\S+)`)
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sent := false
		for sc.Scan() { // keep reading so the process never blocks on a full pipe
			if m := listening.FindStringSubmatch(sc.Text()); m != nil && !sent {
				addr <- m[1]
				sent = true
			}
		}
		if !sent {
			close(addr)
		}
	}()
	select {
	case a, ok := <-addr:
		if !ok {
			stop()
			return nil, fmt.Errorf("the api exited before listening")
		}
		apiURL = "http://" + a
	case <-time.After(2 * time.Minute):
		stop()
		return nil, fmt.Errorf("the api did not listen within 2 minutes")
	}
	if err := seed(); err != nil {
		stop()
		return nil, err
	}
	return stop, nil
}

// seed signs in as the admin, creates the survey "demo" and a personal access token.
func seed() error {
	ctx := context.Background()
	anon, err := client.New(apiURL)
	if err != nil {
		return err
	}
	tok, err := anon.SignIn(ctx, adminEmail, adminPass)
	if err != nil {
		return err
	}
	access, err := anon.Refresh(ctx, tok.RefreshToken)
	if err != nil {
		return err
	}
	admin := anon.WithToken(access)
	if err := admin.Do(ctx, http.MethodPost, "/api/admin/surveys", nil, map[string]string{"id": "demo", "name": "Demo"}, nil); err != nil {
		return err
	}
	pat, err := admin.CreatePersonalAccessToken(ctx, "client tests", time.Now().Add(24*time.Hour))
	if err != nil {
		return err
	}
	token = pat.Token
	return nil
}

// newClient returns a client of the test API with the admin's personal access token.
func newClient(t *testing.T) *client.Client {
	t.Helper()
	c, err := client.New(apiURL, client.WithToken(token))
	if err != nil {
		t.Fatal(err)
	}
	return c
}
