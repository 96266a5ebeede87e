// Command signinflood measures the api binary's peak memory under a flood of sign-ins with
// invented e-mail addresses (issue 11): it starts the binary in embedded mode on a fresh
// DATA_DIR, sends -clients concurrent POST /api/signin, each from its own loopback source
// address (127.1.x.y) unless -sources is lower, so the per-address limit does not hide the
// hashing bound, and reads the process's VmHWM (peak resident set) from /proc.
//
//	go build -o /tmp/api ./cmd/api && go run ./bench/signinflood -binary /tmp/api
//	go run ./bench/signinflood -binary /tmp/api -clients 200 -rounds 3 -sources 1
//
// Linux only (/proc, and binding 127.0.0.0/8 source addresses on the loopback interface).
package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "signinflood:", err)
		os.Exit(1)
	}
}

func run() error {
	binary := flag.String("binary", "", "the api binary to start (required)")
	clients := flag.Int("clients", 200, "concurrent sign-ins per round")
	rounds := flag.Int("rounds", 1, "rounds of -clients sign-ins, one after the other")
	sources := flag.Int("sources", 0, "distinct source addresses (0: one per client)")
	flag.Parse()
	if *binary == "" || *clients < 1 || *rounds < 1 {
		flag.Usage()
		os.Exit(2)
	}
	if *sources <= 0 || *sources > *clients {
		*sources = *clients
	}

	dir, err := os.MkdirTemp("", "signinflood-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cmd := exec.Command(*binary)
	cmd.Env = append(os.Environ(), "HTTP_ADDR=127.0.0.1:0", "DATA_DIR="+dir, "ADMIN_PASSWORD=flood admin password")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	addr, err := listeningAddr(stderr)
	if err != nil {
		return err
	}
	go func() { _, _ = io.Copy(io.Discard, stderr) }()
	base := "http://" + addr
	startHWM, _ := procStatus(cmd.Process.Pid, "VmHWM")

	transports := make([]*http.Transport, *sources)
	for i := range transports {
		local := &net.TCPAddr{IP: net.IPv4(127, 1, byte(i/250), byte(1+i%250))}
		transports[i] = &http.Transport{DialContext: (&net.Dialer{LocalAddr: local, Timeout: 5 * time.Second}).DialContext}
	}
	statuses := map[int]int{}
	var latencies []time.Duration
	var mu sync.Mutex
	start := time.Now()
	for range *rounds {
		var wg sync.WaitGroup
		for i := range *clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := &http.Client{Transport: transports[i%*sources], Timeout: time.Minute}
				body := fmt.Sprintf(`{"email":"%s@flood.example","password":"a guess of some length"}`, randomHex(8))
				t0 := time.Now()
				resp, err := c.Post(base+"/api/signin", "application/json", strings.NewReader(body))
				d := time.Since(t0)
				code := -1
				if err == nil {
					code = resp.StatusCode
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				mu.Lock()
				statuses[code]++
				latencies = append(latencies, d)
				mu.Unlock()
			}()
		}
		wg.Wait()
	}
	elapsed := time.Since(start)
	hwm, err := procStatus(cmd.Process.Pid, "VmHWM")
	if err != nil {
		return err
	}
	rss, _ := procStatus(cmd.Process.Pid, "VmRSS")
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	fmt.Printf("binary %s: %d rounds × %d concurrent sign-ins with invented e-mails from %d source addresses in %s\n",
		*binary, *rounds, *clients, *sources, elapsed.Round(time.Millisecond))
	fmt.Printf("statuses %v; latency p50 %s, max %s\n", statuses,
		latencies[len(latencies)/2].Round(time.Millisecond), latencies[len(latencies)-1].Round(time.Millisecond))
	fmt.Printf("VmHWM before the flood %s, after %s (%.0f MiB); VmRSS after %s\n", startHWM, hwm, kibToMiB(hwm), rss)
	return nil
}

var listening = regexp.MustCompile(`msg=listening addr=(\S+)`)

// listeningAddr reads the binary's log until its "listening" line; the log level must let
// info through for that line, so it reads until it sees it or the process ends.
func listeningAddr(r io.Reader) (string, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if m := listening.FindStringSubmatch(sc.Text()); m != nil {
			return m[1], nil
		}
	}
	return "", errors.New("the binary ended before logging its listening address")
}

// procStatus reads one field ("VmHWM 123 kB") of /proc/<pid>/status.
func procStatus(pid int, field string) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return "", err
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if k, v, ok := bytes.Cut(line, []byte(":")); ok && string(k) == field {
			return strings.TrimSpace(string(v)), nil
		}
	}
	return "", fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

func kibToMiB(s string) float64 {
	var kib float64
	_, _ = fmt.Sscanf(s, "%f kB", &kib)
	return kib / 1024
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
