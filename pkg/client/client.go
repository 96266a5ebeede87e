package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// maxAnswer caps how much of an answer the client reads: a listing page of 500 deliveries
// with their fields is far below it.
const maxAnswer = 64 << 20

// Client calls the Dispatch24 API. It is safe for concurrent use. A Client is immutable:
// WithToken returns a copy carrying another token.
type Client struct {
	base  *url.URL
	token string
	hc    *http.Client
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient makes the client send its requests through hc (its transport, timeout and
// cookie jar). The client never follows redirects whatever hc's CheckRedirect says: a
// redirect would carry the token to another address. The default is an http.Client with a
// 30-second timeout.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) {
		cp := *hc
		c.hc = &cp
	}
}

// WithToken sets the token the client sends in X-Auth-Token: a personal access token (the
// simplest for programs), or an access token from Refresh.
func WithToken(token string) Option {
	return func(c *Client) { c.token = strings.TrimSpace(token) }
}

// New returns a client of the API at baseURL (such as "https://dispatch24.example.org"; a
// path prefix is kept). The URL must be http or https and carry no credentials.
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: %q is not an http(s) URL", redactURL(baseURL))
	}
	if u.User != nil {
		return nil, fmt.Errorf("client: the API URL %q carries credentials; use WithToken", redactURL(baseURL))
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawQuery, u.Fragment = "", ""
	c := &Client{base: u, hc: &http.Client{Timeout: 30 * time.Second}}
	for _, o := range opts {
		o(c)
	}
	c.hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c, nil
}

// WithToken returns a copy of c that sends token instead of c's.
func (c *Client) WithToken(token string) *Client {
	cp := *c
	cp.token = strings.TrimSpace(token)
	return &cp
}

// BaseURL returns the API's base URL as the client uses it.
func (c *Client) BaseURL() string { return c.base.String() }

// Do sends one request to the API: path is the route (such as "/api/admin/deliveries"), query
// its parameters (may be nil), in the JSON body (nil: none) and out where the JSON answer is
// decoded (nil: discarded; a *json.RawMessage keeps it as sent). An answer other than 2xx
// comes back as *Error. The typed methods are built on it; use it for routes they lack.
func (c *Client) Do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	return c.do(ctx, method, path, query, c.token, in, out)
}

func (c *Client) do(ctx context.Context, method, path string, query url.Values, token string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("%s %s: encoding the request: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	target := c.base.String() + path
	if len(query) > 0 {
		target += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err
		}
		return fmt.Errorf("%s %s: calling the API at %s: %w", method, path, c.base.Redacted(), err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return fmt.Errorf("%s %s: reading the API's answer: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return newError(method, path, resp, raw)
	}
	if out != nil && len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%s %s: decoding the API's answer: %w", method, path, err)
		}
	}
	return nil
}

func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
