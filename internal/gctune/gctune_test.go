package gctune

import (
	"runtime/debug"
	"testing"
)

func TestApply(t *testing.T) {
	orig := debug.SetGCPercent(100)
	defer debug.SetGCPercent(orig)

	env := func(vals map[string]string) func(string) string {
		return func(k string) string { return vals[k] }
	}

	// No GOGC: the default is set.
	p, applied := Apply(env(nil))
	if !applied || p != DefaultPercent {
		t.Fatalf("Apply without GOGC = %d, %v; want %d, true", p, applied, DefaultPercent)
	}
	if got := debug.SetGCPercent(100); got != DefaultPercent {
		t.Fatalf("GC percent %d after Apply, want %d", got, DefaultPercent)
	}

	// The operator's GOGC (which the runtime applied at start; here 150) is left alone,
	// and GOMEMLIMIT does not change the choice.
	debug.SetGCPercent(150)
	p, applied = Apply(env(map[string]string{"GOGC": "150", "GOMEMLIMIT": "256MiB"}))
	if applied || p != 150 {
		t.Fatalf("Apply with GOGC=150 = %d, %v; want 150, false", p, applied)
	}
	if got := debug.SetGCPercent(100); got != 150 {
		t.Fatalf("GC percent %d after Apply with GOGC set, want 150", got)
	}

	// GOGC=off is the operator's too.
	debug.SetGCPercent(-1)
	p, applied = Apply(env(map[string]string{"GOGC": "off"}))
	if applied || p != -1 {
		t.Fatalf("Apply with GOGC=off = %d, %v; want -1, false", p, applied)
	}
}
