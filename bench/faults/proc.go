package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is one child process of the harness under a supervisor: when it exits without the
// harness having stopped it, it is counted as a crash and started again a second later, as
// a container orchestrator would. Its output goes to a log file; readyLine in it means ready.
type proc struct {
	name      string
	bin       string
	args      []string
	env       []string
	logPath   string
	readyLine string

	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{} // closed when cmd has exited
	ready   chan struct{} // closed when the current run logged readyLine
	want    bool          // the supervisor restarts it on exit
	crashes int
	last    string // the last crash's exit status and log line
	closed  bool
}

func newProc(name, bin, logPath, readyLine string, env []string, args ...string) *proc {
	return &proc{name: name, bin: bin, args: args, env: env, logPath: logPath, readyLine: readyLine}
}

// start starts the process and returns without waiting for it to be ready.
func (p *proc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return errors.New(p.name + ": harness closed")
	}
	p.want = true
	return p.startLocked()
}

func (p *proc) startLocked() error {
	if p.cmd != nil {
		return fmt.Errorf("%s: already running", p.name)
	}
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(logf, "==== %s: start at %s\n", p.name, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = p.env
	// The kernel kills the child when this process dies, also when a test panics on its
	// timeout and no cleanup runs.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("starting %s: %w", p.name, err)
	}
	exited, ready := make(chan struct{}), make(chan struct{})
	p.cmd, p.exited, p.ready = cmd, exited, ready
	go func() {
		var lastLine string
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		readySeen := false
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logf, line)
			if !readySeen && strings.Contains(line, p.readyLine) {
				readySeen = true
				close(ready)
			}
			if !strings.Contains(line, "level=INFO") && !strings.Contains(line, "level=DEBUG") {
				lastLine = line // a fatal error is the last such line
			}
		}
		_, _ = io.Copy(logf, out)
		err := cmd.Wait()
		fmt.Fprintf(logf, "==== %s: exited at %s: %v\n", p.name, time.Now().Format(time.RFC3339Nano), err)
		logf.Close()
		p.mu.Lock()
		p.cmd = nil
		close(exited)
		restart := p.want && !p.closed
		if restart {
			p.crashes++
			p.last = fmt.Sprintf("%v: %s", err, lastLine)
		}
		p.mu.Unlock()
		if restart {
			time.Sleep(time.Second)
			p.mu.Lock()
			if p.want && !p.closed && p.cmd == nil {
				if err := p.startLocked(); err != nil {
					p.last = err.Error()
				}
			}
			p.mu.Unlock()
		}
	}()
	return nil
}

// waitReady waits until the current run has logged its ready line (a crashed run's
// successor counts).
func (p *proc) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		p.mu.Lock()
		ready := p.ready
		p.mu.Unlock()
		if ready != nil {
			select {
			case <-ready:
				return nil
			case <-time.After(100 * time.Millisecond):
			}
		} else {
			time.Sleep(100 * time.Millisecond)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return fmt.Errorf("%s not ready within %s (%d crashes; last: %s; log %s)", p.name, timeout, p.crashes, p.last, p.logPath)
}

// signal sends sig and waits for the process to exit; the supervisor does not restart it.
func (p *proc) signal(sig syscall.Signal, timeout time.Duration) error {
	p.mu.Lock()
	p.want = false
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	if cmd == nil {
		return nil
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-exited:
		return nil
	case <-time.After(timeout):
		_ = cmd.Process.Kill()
		<-exited
		return fmt.Errorf("%s did not exit within %s of %v", p.name, timeout, sig)
	}
}

func (p *proc) kill9() error { return p.signal(syscall.SIGKILL, 10*time.Second) }
func (p *proc) term() error  { return p.signal(syscall.SIGTERM, 30*time.Second) }

// restart starts the process again and waits until it is ready.
func (p *proc) restart(timeout time.Duration) error {
	if err := p.start(); err != nil {
		return err
	}
	return p.waitReady(timeout)
}

// crashInfo is how many times the process exited on its own, and how the last time.
func (p *proc) crashInfo() (int, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.crashes, p.last
}

// close kills the process for good (the harness's cleanup).
func (p *proc) close() {
	p.mu.Lock()
	p.closed, p.want = true, false
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	if cmd != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Process.Kill()
		<-exited
	}
}

// logTail is the end of the process's log, for a failure report.
func (p *proc) logTail(lines int) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return ""
	}
	ls := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(ls) > lines {
		ls = ls[len(ls)-lines:]
	}
	return strings.Join(ls, "\n")
}
