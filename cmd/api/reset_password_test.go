package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/internal/app"
	"github.com/dispatch24/dispatch24/internal/runtest"
)

// call sends one JSON request to a running api and returns the status and decoded body.
func call(t *testing.T, method, url, body string, header ...string) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

// resetRun runs `api reset-password args…` through run (runWithStdin when stdin is given)
// and returns its exit status as main reports it, stdout and stderr.
func resetRun(t *testing.T, vars map[string]string, stdin *string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr runtest.Buffer
	getenv := func(k string) string { return vars[k] }
	args = append([]string{"reset-password"}, args...)
	var err error
	if stdin == nil {
		err = run(context.Background(), args, getenv, &stdout, &stderr)
	} else {
		err = runWithStdin(context.Background(), args, getenv, strings.NewReader(*stdin), &stdout, &stderr)
	}
	code := app.ExitCode("dispatch24-api", err, &stderr)
	return code, stdout.String(), stderr.String()
}

// TestResetPassword: `api reset-password` (CONTRACT §8, issue 16 item 2) on both stores, beside
// a running api: it sets a new password (printed once, or read with --stdin), re-enables the
// disabled account, revokes its refresh tokens and deletes its personal access tokens; it
// needs neither TOKEN_SECRET nor SECRETS_KEY; exit 2 for a bad command line, 1 for an unknown
// account. A restart with ADMIN_PASSWORD set on the existing store logs that it is ignored.
func TestResetPassword(t *testing.T) {
	t.Parallel()
	for _, tc := range bothStores() {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			vars := tc.vars(t)
			p := runtest.Start(t, run, vars)
			if strings.Contains(p.Stderr.String(), "are ignored") {
				t.Errorf("the first start (no account yet) says ADMIN_* is ignored:\n%s", p.Stderr.String())
			}
			signIn := func(email, pw string) (int, string) {
				code, m := call(t, "POST", p.URL+"/api/signin", `{"email":"`+email+`","password":"`+pw+`"}`)
				rt, _ := m["refreshToken"].(string)
				return code, rt
			}
			access := func(rt string) string {
				code, m := call(t, "POST", p.URL+"/api/refresh", "", "X-Auth-Token", rt)
				if code != http.StatusOK {
					t.Fatalf("refresh: %d %v", code, m)
				}
				return m["accessToken"].(string)
			}
			code, adminRT := signIn("admin@localhost", "admin password")
			if code != http.StatusOK {
				t.Fatalf("admin sign-in: %d", code)
			}
			admin := access(adminRT)
			code, m := call(t, "POST", p.URL+"/api/admin/user/personal-access-tokens",
				`{"name":"ci job","expiresAt":"`+time.Now().Add(30*24*time.Hour).UTC().Format(time.RFC3339)+`"}`, "X-Auth-Token", admin)
			if code != http.StatusCreated {
				t.Fatalf("PAT: %d %v", code, m)
			}
			pat := m["token"].(string)
			if code, _ := call(t, "GET", p.URL+"/api/admin/users", "", "Authorization", "Bearer "+pat); code != http.StatusOK {
				t.Fatalf("the PAT works before the reset: %d", code)
			}
			// A second admin disables the first, as after a compromise.
			code, m = call(t, "POST", p.URL+"/api/admin/users",
				`{"email":"ops@example.org","password":"ops password","name":"Ops","roles":["admin"]}`, "X-Auth-Token", admin)
			if code != http.StatusCreated {
				t.Fatalf("second admin: %d %v", code, m)
			}
			_, opsRT := signIn("ops@example.org", "ops password")
			ops := access(opsRT)
			code, users := call(t, "GET", p.URL+"/api/admin/users", "", "X-Auth-Token", ops)
			if code != http.StatusOK {
				t.Fatalf("users: %d", code)
			}
			var adminID string
			for _, u := range users["items"].([]any) {
				if u := u.(map[string]any); u["email"] == "admin@localhost" {
					adminID = u["id"].(string)
				}
			}
			if code, m := call(t, "PATCH", p.URL+"/api/admin/users/"+adminID, `{"disabled":true}`, "X-Auth-Token", ops); code != http.StatusOK {
				t.Fatalf("disable: %d %v", code, m)
			}
			if code, _ := signIn("admin@localhost", "admin password"); code == http.StatusOK {
				t.Fatal("a disabled account signs in")
			}

			// The command needs the store's configuration only.
			cmdVars := map[string]string{}
			for k, v := range vars {
				if k != "TOKEN_SECRET" && k != "SECRETS_KEY" && k != "ADMIN_PASSWORD" {
					cmdVars[k] = v
				}
			}
			code, out, errOut := resetRun(t, cmdVars, nil, "--email", "Admin@Localhost")
			if code != 0 {
				t.Fatalf("reset-password: exit %d\n%s", code, errOut)
			}
			const prefix = "New password (shown only this once): "
			i := strings.Index(out, prefix)
			if i < 0 {
				t.Fatalf("no new password printed:\n%s", out)
			}
			newPW := strings.TrimSpace(out[i+len(prefix):])
			if len(newPW) < 12 || strings.Contains(errOut, newPW) {
				t.Fatalf("new password %q too short, or also logged:\n%s", newPW, errOut)
			}
			if code, _ := signIn("admin@localhost", "admin password"); code != http.StatusUnauthorized {
				t.Errorf("the old password after the reset: %d, want 401", code)
			}
			code, rt2 := signIn("admin@localhost", newPW)
			if code != http.StatusOK {
				t.Fatalf("the new password (account re-enabled): %d, want 200", code)
			}
			if code, m := call(t, "POST", p.URL+"/api/refresh", "", "X-Auth-Token", adminRT); code != http.StatusUnauthorized || m["code"] != "token_revoked" {
				t.Errorf("the refresh token from before the reset: %d %v, want 401 token_revoked", code, m["code"])
			}
			if code, _ := call(t, "GET", p.URL+"/api/admin/users", "", "Authorization", "Bearer "+pat); code != http.StatusUnauthorized {
				t.Errorf("the PAT from before the reset: %d, want 401 (deleted)", code)
			}
			if code, _ := call(t, "POST", p.URL+"/api/refresh", "", "X-Auth-Token", opsRT); code != http.StatusOK {
				t.Errorf("another account's refresh token: %d, want 200", code)
			}

			// --stdin: the operator's own password, not printed.
			chosen := "a chosen password\n"
			code, out, errOut = resetRun(t, cmdVars, &chosen, "--email", "admin@localhost", "--stdin")
			if code != 0 || strings.Contains(out+errOut, "a chosen password") {
				t.Fatalf("reset-password --stdin: exit %d, or the password echoed\n%s%s", code, out, errOut)
			}
			if code, _ := signIn("admin@localhost", "a chosen password"); code != http.StatusOK {
				t.Errorf("the password read from stdin: %d, want 200", code)
			}
			if code, m := call(t, "POST", p.URL+"/api/refresh", "", "X-Auth-Token", rt2); code != http.StatusUnauthorized || m["code"] != "token_revoked" {
				t.Errorf("refresh after the second reset: %d %v, want 401 token_revoked", code, m["code"])
			}

			short, empty := "short\n", ""
			for _, bad := range []struct {
				name  string
				stdin *string
				args  []string
				code  int
				say   string
			}{
				{"unknown account", nil, []string{"--email", "nobody@example.org"}, 1, "no global account"},
				{"no --email", nil, nil, 2, "--email is required"},
				{"unknown flag", nil, []string{"--email", "admin@localhost", "--force"}, 2, "force"},
				{"stray argument", nil, []string{"--email", "admin@localhost", "extra"}, 2, "extra"},
				{"not an e-mail", nil, []string{"--email", "admin"}, 2, "e-mail"},
				{"short password", &short, []string{"--email", "admin@localhost", "--stdin"}, 2, "at least"},
				{"empty stdin", &empty, []string{"--email", "admin@localhost", "--stdin"}, 2, "no password"},
			} {
				code, out, errOut := resetRun(t, cmdVars, bad.stdin, bad.args...)
				if code != bad.code || !strings.Contains(errOut, bad.say) || out != "" {
					t.Errorf("%s: exit %d, want %d and stderr naming %q; stdout %q stderr:\n%s", bad.name, code, bad.code, bad.say, out, errOut)
				}
			}
			if code, _ := signIn("admin@localhost", "a chosen password"); code != http.StatusOK {
				t.Errorf("a refused reset changed the password: %d", code)
			}

			// A restart with ADMIN_PASSWORD set on a store that has accounts says it is ignored.
			if err := p.Stop(); err != nil {
				t.Fatal(err)
			}
			p2 := runtest.Start(t, run, vars)
			if !strings.Contains(p2.Stderr.String(), "are ignored") || !strings.Contains(p2.Stderr.String(), "ignored=ADMIN_PASSWORD") {
				t.Errorf("no line saying ADMIN_PASSWORD is ignored:\n%s", p2.Stderr.String())
			}
			if strings.Contains(p2.Stderr.String(), "admin password") {
				t.Error("ADMIN_PASSWORD's value logged")
			}
		})
	}
}

// TestResetPasswordWithoutStore: on a DATA_DIR with no database the account does not exist
// (exit 1), and the command creates nothing there.
func TestResetPasswordWithoutStore(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	code, _, errOut := resetRun(t, map[string]string{"DATA_DIR": dir}, nil, "--email", "admin@localhost")
	if code != 1 || !strings.Contains(errOut, "no global account") || !strings.Contains(errOut, "dispatch24.db") {
		t.Errorf("exit %d, want 1 naming the missing store:\n%s", code, errOut)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("DATA_DIR created: %v", err)
	}
}

// TestNoAdminIgnoredLineWithoutAdminVars: a restart without ADMIN_* says nothing about them.
func TestNoAdminIgnoredLineWithoutAdminVars(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"DATA_DIR": t.TempDir()}
	p := runtest.Start(t, run, vars)
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	p2 := runtest.Start(t, run, vars)
	if strings.Contains(p2.Stderr.String(), "are ignored") {
		t.Errorf("a restart without ADMIN_* logs that they are ignored:\n%s", p2.Stderr.String())
	}
}
