package auth_test

import (
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dispatch24/dispatch24/internal/auth"
	"github.com/dispatch24/dispatch24/internal/password"
	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/storetest"
)

// rejections reads dispatch24_signin_rejections_total from reg, by reason.
func rejections(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "dispatch24_signin_rejections_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			if len(m.GetLabel()) != 1 || m.GetLabel()[0].GetName() != "reason" {
				t.Fatalf("series with labels %v, want reason only", m.GetLabel())
			}
			out[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
		}
	}
	return out
}

// TestSignInRejectionsCounted: every refused sign-in counts once under its reason (a wrong
// password, an unknown alias or token as bad_credentials, a 429 as rate_limited, a full hashing
// bound as busy); a successful sign-in counts nothing; all three series exist at zero before the
// first refusal, so alerts on them have data from the start.
func TestSignInRejectionsCounted(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		reg := prometheus.NewRegistry()
		hasher := password.NewHasher(password.HasherConfig{Slots: 1, SlotMemory: cheap.Memory, MaxPending: 1})
		f := setup(t, db, func(c *auth.Config) {
			c.Metrics = auth.NewMetrics(reg)
			c.Hasher = hasher
			c.MaxFailures = 2
		})
		f.createUser("ada@example.org", "correct horse", []string{"admin"})
		f.createSurvey("demo")
		f.createRespondent("demo", "user1", "password123", "tok-user1-0123456789", false)

		check := func(step string, want map[string]float64) {
			t.Helper()
			got := rejections(t, reg)
			if len(got) != len(want) {
				t.Fatalf("%s: series %v, want %v", step, got, want)
			}
			for k, v := range want {
				if got[k] != v {
					t.Fatalf("%s: %v, want %v", step, got, want)
				}
			}
		}
		check("at start", map[string]float64{"bad_credentials": 0, "rate_limited": 0, "busy": 0})

		f.signIn("ada@example.org", "correct horse")
		check("after a successful sign-in", map[string]float64{"bad_credentials": 0, "rate_limited": 0, "busy": 0})

		const addr = "203.0.113.50:1"
		signIn := func(path string, body any) int {
			return result(doReq(t, f.rt, addr, "POST", path, body)).status
		}
		for _, tc := range []struct {
			path   string
			body   any
			status int
		}{
			{"/api/signin", map[string]string{"email": "ada@example.org", "password": "wrong"}, http.StatusUnauthorized},
			{"/api/signin/alias", map[string]string{"surveyId": "demo", "userName": "nobody", "password": "x"}, http.StatusUnauthorized},
			{"/api/signin/token/tok-unknown-0123456789", nil, http.StatusUnauthorized},
			{"/api/signin", map[string]string{"email": "ada@example.org", "password": "wrong again"}, http.StatusUnauthorized},
			// MaxFailures 2 for ada from addr: the third is refused unchecked.
			{"/api/signin", map[string]string{"email": "ada@example.org", "password": "correct horse"}, http.StatusTooManyRequests},
		} {
			if got := signIn(tc.path, tc.body); got != tc.status {
				t.Fatalf("POST %s: %d, want %d", tc.path, got, tc.status)
			}
		}
		check("after four failures and a 429", map[string]float64{"bad_credentials": 4, "rate_limited": 1, "busy": 0})

		leave, err := hasher.Admit()
		if err != nil {
			t.Fatal(err)
		}
		if got := signIn("/api/signin", map[string]string{"email": "bob@example.org", "password": "x"}); got != http.StatusServiceUnavailable {
			t.Fatalf("sign-in with the bound full: %d, want 503", got)
		}
		leave()
		check("after a 503", map[string]float64{"bad_credentials": 4, "rate_limited": 1, "busy": 1})
	})
}
