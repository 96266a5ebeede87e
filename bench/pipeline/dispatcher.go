package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/dispatch24/dispatch24/internal/dispatch"
)

// runningDispatcher is delivery workers started by the harness.
type runningDispatcher struct {
	// started is when the workers began (for a process: when it logged "listening", just
	// before its workers start).
	started time.Time
	// launch is how long the process took from exec to "listening" (0 in-process).
	launch time.Duration
	pid    int // 0 in-process
	stop   func() error
}

// startInProcess runs the workers in this process, configured as app.NewDispatcher
// configures them in cmd/api with the default settings: WEBHOOK_TIMEOUT 15s, the default
// retry schedule, DISPATCH_CONCURRENCY 64 per core, DISPATCH_ENDPOINT_CONCURRENCY 32.
func (w *world) startInProcess(ctx context.Context) (*runningDispatcher, error) {
	d, err := dispatch.New(dispatch.Config{
		DB:             w.db,
		Secrets:        w.secrets,
		Consumer:       w.consumer,
		Client:         w.whClient,
		AttemptTimeout: webhookTTL,
		Issuer:         tokenIssuer,
		Logger:         w.logger.With("component", "dispatcher"),
		Metrics:        w.metrics,
		TracerProvider: w.tracing.Provider,
		Propagator:     w.tracing.Propagator,
	})
	if err != nil {
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	rd := &runningDispatcher{started: time.Now()}
	go func() { done <- d.Run(runCtx) }()
	rd.stop = func() error {
		cancel()
		err := <-done
		if errors.Is(err, context.Canceled) {
			err = nil
		}
		return err
	}
	w.onClose(func() { _ = rd.stop() })
	return rd, nil
}

// startProcess runs the cmd/dispatcher binary against the same schema and the embedded NATS
// server's loopback listener, with the production defaults and WEBHOOK_ALLOW_NETS for the
// receiver. It returns when the process logs "listening".
func (w *world) startProcess(ctx context.Context) (*runningDispatcher, error) {
	p, err := w.launch(ctx, "dispatcher", "github.com/dispatch24/dispatch24/cmd/dispatcher", w.o.dispatcherBin, []string{
		"DATABASE_URL=" + w.dbURL,
		"NATS_URL=" + w.ns.ClientURL(),
		"TOKEN_SECRET=" + w.tokenKey,
		"SECRETS_KEY=" + w.secretsKey,
		"TOKEN_ISSUER=" + tokenIssuer,
		"WEBHOOK_ALLOW_NETS=127.0.0.0/8",
		"HTTP_ADDR=127.0.0.1:0",
		"LOG_LEVEL=info",
		"DATA_DIR=" + filepath.Join(w.tmp, "dispatcher-data"),
	})
	if err != nil {
		return nil, err
	}
	w.dispMetricsURL = "http://" + p.addr + "/metrics"
	return &runningDispatcher{started: p.started, launch: p.launch, pid: p.pid, stop: p.stop}, nil
}

// process is a binary the harness runs.
type process struct {
	pid     int
	addr    string // from its "listening" log line
	started time.Time
	launch  time.Duration // exec → "listening"
	stop    func() error
}

// launch builds pkg (unless bin names a built one), runs it with env plus PATH, HOME and
// GOMAXPROCS, and returns when it logs "listening". Its warnings and errors go to stderr.
func (w *world) launch(ctx context.Context, name, pkg, bin string, env []string) (*process, error) {
	if bin == "" {
		bin = filepath.Join(w.tmp, name)
		build := exec.CommandContext(ctx, "go", "build", "-o", bin, pkg)
		build.Stdout, build.Stderr = w.stderr, w.stderr
		if err := build.Run(); err != nil {
			return nil, fmt.Errorf("building %s: %w", pkg, err)
		}
	}
	cmd := exec.Command(bin)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	if v := os.Getenv("GOMAXPROCS"); v != "" {
		cmd.Env = append(cmd.Env, "GOMAXPROCS="+v)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdout = io.Discard
	launched := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan error, 1)
	type listen struct {
		at   time.Time
		addr string
	}
	listening := make(chan listen, 1)
	re := regexp.MustCompile(`msg=listening addr=(\S+)`)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			if m := re.FindStringSubmatch(line); m != nil {
				select {
				case listening <- listen{time.Now(), m[1]}:
				default:
				}
				continue
			}
			// Warnings and errors (and the start-up lines) go to our stderr.
			if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
				fmt.Fprintln(w.stderr, name+":", line)
			}
		}
		exited <- cmd.Wait()
	}()
	p := &process{pid: cmd.Process.Pid}
	var stopped bool
	p.stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			return err
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			return fmt.Errorf("%s did not stop within 30s of SIGTERM", name)
		}
	}
	w.onClose(func() { _ = p.stop() })
	select {
	case l := <-listening:
		p.started, p.launch, p.addr = l.at, l.at.Sub(launched), l.addr
		return p, nil
	case err := <-exited:
		stopped = true
		return nil, fmt.Errorf("%s exited before listening: %v", name, err)
	case <-time.After(time.Minute):
		return nil, fmt.Errorf("%s did not listen within a minute", name)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// procCPU is a process's user+system CPU time from /proc/<pid>/stat.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// Fields after the command name (which may hold spaces) start at ") ".
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / clockTicks
}

// USER_HZ, which Linux fixes at 100 for /proc.
const clockTicks = 100

// procRSS returns VmRSS and VmHWM (peak) of a process, in bytes.
func procRSS(pid int) (rss, peak int64) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) < 1 {
			continue
		}
		n, _ := strconv.ParseInt(f[0], 10, 64)
		switch k {
		case "VmRSS":
			rss = n << 10
		case "VmHWM":
			peak = n << 10
		}
	}
	return rss, peak
}

// selfCPU is this process's CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// machineCPU returns the busy and total CPU time of the whole machine from /proc/stat.
func machineCPU() (busy, total time.Duration) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0, 0
	}
	var sum, idle int64
	for i, v := range f[1:] {
		n, _ := strconv.ParseInt(v, 10, 64)
		if i >= 8 { // guest times are already inside user and nice
			break
		}
		sum += n
		if i == 3 || i == 4 { // idle, iowait
			idle += n
		}
	}
	return time.Duration(sum-idle) * time.Second / clockTicks, time.Duration(sum) * time.Second / clockTicks
}
