package webhook

import (
	"math"
	"net/http"
	"strings"
	"time"
)

// ParseRetryAfter parses a Retry-After header value (RFC 9110 section 10.2.3): a number of
// seconds or an HTTP date, which is taken relative to now; a date in the past gives 0. ok is
// false for an empty or malformed value. Huge values saturate rather than overflow; callers cap
// the result.
func ParseRetryAfter(value string, now time.Time) (d time.Duration, ok bool) {
	value = strings.TrimSpace(value)
	if value == "" {
		return 0, false
	}
	if isDigits(value) {
		const maxSeconds = math.MaxInt64 / int64(time.Second)
		var n int64
		for i := 0; i < len(value); i++ {
			n = n*10 + int64(value[i]-'0')
			if n > maxSeconds {
				return math.MaxInt64, true
			}
		}
		return time.Duration(n) * time.Second, true
	}
	t, err := http.ParseTime(value)
	if err != nil {
		return 0, false
	}
	if d = t.Sub(now); d < 0 {
		d = 0
	}
	return d, true
}

// isDigits reports whether s is non-empty and all ASCII digits.
func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
