// Package gctune sets the garbage collector's default for Dispatch24's API process.
//
// Go's default, GOGC=100, collects whenever the heap has grown by its live size. The API's
// live heap is small (a few MB: pools, caches, in-flight requests) while every submission
// allocates its ~10 KB recall several times over (request body, stored submission, event
// envelope, database and NATS buffers), so at the default the collector runs many times a
// second and takes a fifth of the process's CPU at full intake. A higher default trades a
// few tens of MB of heap for that CPU.
//
// An operator's GOGC always wins. GOMEMLIMIT, when set, keeps bounding the heap: the
// runtime collects as often as it must to stay under the limit whatever GOGC says, so the
// higher default is safe in a memory-limited container as long as the limit is set.
package gctune

import (
	"runtime/debug"
	"strings"
)

// DefaultPercent is the GOGC the API runs with when the environment sets none.
const DefaultPercent = 400

// Apply sets GOGC to DefaultPercent unless getenv("GOGC") is set, and returns the percent
// in effect and whether Apply set it.
func Apply(getenv func(string) string) (percent int, applied bool) {
	if v := strings.TrimSpace(getenv("GOGC")); v != "" {
		// The runtime read it at start; report it without changing it.
		p := debug.SetGCPercent(-1)
		debug.SetGCPercent(p)
		return p, false
	}
	debug.SetGCPercent(DefaultPercent)
	return DefaultPercent, true
}
