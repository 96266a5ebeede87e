package main

import (
	"context"
	"strings"
	"testing"
)

// TestCommandLine: the ops commands and help need none of the workers' configuration; bad
// command lines exit 2 with a clear line and the usage on stderr, and never echo a token.
func TestCommandLine(t *testing.T) {
	t.Parallel()
	const secret = "d24pat_commandLineSecret0123456789"
	cases := []struct {
		name   string
		args   []string
		env    map[string]string
		code   int
		stdout []string // each must appear on stdout
		stderr []string // each must appear on stderr
	}{
		{name: "help", args: []string{"help"}, code: 0,
			stdout: []string{"dispatcher deliveries list", "dispatcher replay --delivery ID", "DISPATCH24_TOKEN", "NATS_URL", "DATABASE_URL"}},
		{name: "-h", args: []string{"-h"}, code: 0, stdout: []string{"dispatcher deliveries show ID", "NATS_URL"}},
		{name: "help replay", args: []string{"help", "replay"}, code: 0, stdout: []string{"-dry-run", "-since", "-api-url"}},
		{name: "help deliveries list", args: []string{"help", "deliveries", "list"}, code: 0, stdout: []string{"-status", "-json"}},
		{name: "replay -h", args: []string{"replay", "-h"}, code: 0, stderr: []string{"-dry-run"}},
		{name: "unknown command", args: []string{"bogus"}, code: 2, stderr: []string{`unknown command "bogus"`, "usage:"}},
		{name: "replay without a range", args: []string{"replay"}, code: 2, stderr: []string{"--since is required", "usage:"}},
		{name: "replay with a bad time", args: []string{"replay", "--since", "yesterday"}, code: 2, stderr: []string{"--since", "usage:"}},
		{name: "replay one and a range", args: []string{"replay", "--delivery", "dlv_x", "--since", "1h"}, code: 2,
			stderr: []string{"does not combine with --since"}},
		{name: "stray argument", args: []string{"replay", "--since", "1h", "extra"}, code: 2, stderr: []string{`unexpected argument "extra"`}},
		{name: "deliveries alone", args: []string{"deliveries"}, code: 2, stderr: []string{"want list or show"}},
		{name: "show without id", args: []string{"deliveries", "show"}, code: 2, stderr: []string{"which delivery?"}},
		{name: "bad status", args: []string{"deliveries", "list", "--status", "lost"}, code: 2,
			stderr: []string{`"lost" is not a delivery status; choose from pending, succeeded, failed, skipped`}},
		{name: "replay of pending", args: []string{"replay", "--since", "1h", "--status", "failed,pending"}, code: 2,
			stderr: []string{"pending deliveries are still being attempted and cannot be replayed; choose from failed, skipped, succeeded"}},
		{name: "bad limit", args: []string{"deliveries", "list", "--limit", "0"}, code: 2, stderr: []string{"--limit"}},
		{name: "unknown flag", args: []string{"deliveries", "list", "--colour"}, code: 2, stderr: []string{"-colour"}},
		{name: "no token", args: []string{"deliveries", "list"}, code: 2, stderr: []string{"DISPATCH24_TOKEN", "usage:"}},
		{name: "bad API URL", args: []string{"deliveries", "list"}, env: map[string]string{"DISPATCH24_TOKEN": secret, "DISPATCH24_API_URL": "ftp://x"},
			code: 2, stderr: []string{"not an http(s) URL"}},
		// A token passed where a value belongs is not echoed back.
		{name: "token as a bad flag value", args: []string{"deliveries", "list", "--token", secret, "--limit", secret}, code: 2,
			stderr: []string{"-limit"}},
		{name: "token in env, bad flag value", args: []string{"deliveries", "list", "--status", secret}, env: map[string]string{"DISPATCH24_TOKEN": secret},
			code: 2, stderr: []string{"[redacted]"}},
	}
	for _, tc := range cases {
		var stdout, stderr strings.Builder
		err := run(context.Background(), tc.args, getenvFrom(tc.env), &stdout, &stderr)
		var report strings.Builder
		code := exitCode(err, &report)
		errText := stderr.String() + report.String()
		if code != tc.code {
			t.Errorf("%s: exit status %d (%v), want %d\nstderr: %s", tc.name, code, err, tc.code, errText)
			continue
		}
		for _, s := range tc.stdout {
			if !strings.Contains(stdout.String(), s) {
				t.Errorf("%s: stdout lacks %q:\n%s", tc.name, s, stdout.String())
			}
		}
		for _, s := range tc.stderr {
			if !strings.Contains(errText, s) {
				t.Errorf("%s: stderr lacks %q:\n%s", tc.name, s, errText)
			}
		}
		if strings.Contains(stdout.String()+errText, secret) {
			t.Errorf("%s: the token appears in the output:\n%s", tc.name, stdout.String()+errText)
		}
		// None of them asks for the workers' configuration.
		if strings.Contains(errText, "invalid configuration") {
			t.Errorf("%s: asked for the workers' configuration: %s", tc.name, errText)
		}
	}
}
