package client

import (
	"fmt"
	"strings"
	"time"
)

// ParseTime reads a time bound as the command line and the console take it: an RFC 3339 time
// ("2026-11-23T10:00:00Z") or a duration back from now ("24h", "90m"). An empty s is the
// zero time (no bound).
func ParseTime(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d).UTC(), nil
	}
	return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time (2026-11-23T10:00:00Z) nor a duration back from now (24h)", s)
}
