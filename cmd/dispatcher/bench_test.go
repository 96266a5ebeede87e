package main

import (
	"context"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BenchmarkBinary runs the dispatcher binary against NATS on a port and a PostgreSQL schema,
// delivers 20,000 events to a receiver in the benchmark process, and reports deliveries/s
// (publish → every delivery recorded) and the process's peak RSS.
//
//	go test ./cmd/dispatcher -run '^$' -bench Binary -benchtime 1x
func BenchmarkBinary(b *testing.B) {
	const total = 20000
	bin := buildBinary(b)
	w := newWorld(b)
	p := startProcess(b, bin, w.env("WEBHOOK_RETRY_SCHEDULE", "0s,5s,5m"))
	waitListening(b, p.logs.String)
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		msgs := w.prepare(b, total)
		b.StartTimer()
		start := time.Now()
		w.send(b, msgs)
		waitFor(b, 5*time.Minute, "every delivery recorded", func() bool {
			var n int
			if err := w.db.QueryRow(context.Background(), "SELECT count(*) FROM deliveries WHERE status = 'succeeded'").Scan(&n); err != nil {
				b.Fatal(err)
			}
			return n >= (i+1)*total
		})
		b.ReportMetric(float64(total)/time.Since(start).Seconds(), "deliveries/s")
	}
	b.StopTimer()
	if kb := peakRSSKiB(b, p.cmd.Process.Pid); kb > 0 {
		b.ReportMetric(float64(kb)/1024, "peak-RSS-MiB")
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	<-p.done
}

// peakRSSKiB reads VmHWM, the peak resident set, of a process (Linux).
func peakRSSKiB(b *testing.B, pid int) int {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		b.Logf("peak RSS: %v", err)
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	return 0
}
