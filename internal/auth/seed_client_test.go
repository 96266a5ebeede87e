package auth_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/storetest"
)

// seedClient is written from seed 004 alone: sign in for a refresh token, POST /refresh with
// it in X-Auth-Token for an access token, send the access token in X-Auth-Token, and on 401
// get a new access token and retry.
type seedClient struct {
	base   string // e.g. https://host/api
	hc     *http.Client
	signIn func(c *seedClient) (*http.Response, error)

	refreshToken string
	accessToken  string
	refreshes    int
}

func (c *seedClient) post(path string, body any, authToken string) (*http.Response, error) {
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	var req *http.Request
	var err error
	if rd != nil {
		req, err = http.NewRequest("POST", c.base+path, rd)
		if err == nil {
			req.Header.Set("Content-Type", "application/json")
		}
	} else {
		req, err = http.NewRequest("POST", c.base+path, nil)
	}
	if err != nil {
		return nil, err
	}
	if authToken != "" {
		req.Header.Set("X-Auth-Token", authToken)
	}
	return c.hc.Do(req)
}

func (c *seedClient) authenticate() error {
	resp, err := c.signIn(c)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("sign-in: HTTP %d", resp.StatusCode)
	}
	var out struct {
		RefreshToken string `json:"refreshToken"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.RefreshToken == "" {
		return fmt.Errorf("sign-in: no refresh token (%v)", err)
	}
	c.refreshToken = out.RefreshToken
	return nil
}

func (c *seedClient) refresh() error {
	c.refreshes++
	resp, err := c.post("/refresh", nil, c.refreshToken)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("refresh: HTTP %d", resp.StatusCode)
	}
	var out struct {
		AccessToken string `json:"accessToken"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.AccessToken == "" {
		return fmt.Errorf("refresh: no access token (%v)", err)
	}
	c.accessToken = out.AccessToken
	return nil
}

// get calls an API endpoint (a full URL), refreshing the access token and retrying once on
// 401.
func (c *seedClient) get(url string) (int, error) {
	if c.accessToken == "" {
		if err := c.refresh(); err != nil {
			return 0, err
		}
	}
	for try := 0; ; try++ {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("X-Auth-Token", c.accessToken)
		resp, err := c.hc.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || try > 0 {
			return resp.StatusCode, nil
		}
		if err := c.refresh(); err != nil {
			return 0, err
		}
	}
}

func TestSeedClient(t *testing.T) {
	t.Parallel()
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := setup(t, db)
		f.createSurvey("demo")
		f.createUser("john@smith.com", "password123", []string{"staff"}, "demo")
		f.createRespondent("demo", "user1", "password123", "tok-user1-0123456789", false)
		srv := httptest.NewServer(f.rt)
		// Redirects would hide a wrong path: the client must hit each route directly.
		noRedirect := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		defer srv.Close()

		clients := map[string]struct {
			c    *seedClient
			path string
		}{
			"global account": {&seedClient{signIn: func(c *seedClient) (*http.Response, error) {
				return c.post("/signin", map[string]string{"email": "john@smith.com", "password": "password123"}, "")
			}}, "/test/staff/demo"},
			"survey alias": {&seedClient{signIn: func(c *seedClient) (*http.Response, error) {
				return c.post("/signin/alias", map[string]string{"surveyId": "demo", "userName": "user1", "password": "password123"}, "")
			}}, "/test/respondent/demo"},
			"URL token": {&seedClient{signIn: func(c *seedClient) (*http.Response, error) {
				return c.post("/signin/token/tok-user1-0123456789", nil, "")
			}}, "/test/respondent/demo"},
		}
		for name, tc := range clients {
			t.Run(name, func(t *testing.T) {
				c := tc.c
				c.base, c.hc = srv.URL+"/api", &http.Client{CheckRedirect: noRedirect}
				if err := c.authenticate(); err != nil {
					t.Fatal(err)
				}
				for i := 0; i < 3; i++ {
					if st, err := c.get(srv.URL + tc.path); err != nil || st != http.StatusOK {
						t.Fatalf("call %d: %d %v", i, st, err)
					}
				}
				if c.refreshes != 1 {
					t.Fatalf("%d refreshes for three calls with one access token", c.refreshes)
				}
				// The access token expires; the next call gets 401, refreshes and retries.
				f.clock.Advance(11 * time.Minute)
				if st, err := c.get(srv.URL + tc.path); err != nil || st != http.StatusOK {
					t.Fatalf("after expiry: %d %v", st, err)
				}
				if c.refreshes != 2 {
					t.Fatalf("%d refreshes, want 2", c.refreshes)
				}
			})
		}
	})
}
