// Package benchapi is the small HTTP client of the Dispatch24 API that the harnesses under
// bench/ use to set a world up as an admin would (sign in, surveys, respondents, webhooks).
package benchapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Client calls the API at Base.
type Client struct {
	Base string
	HTTP *http.Client
}

// Access trades a refresh token for an access token.
func (c *Client) Access(ctx context.Context, refresh string) (string, error) {
	var at struct{ AccessToken string }
	if err := c.Do(ctx, "POST", "/api/refresh", refresh, nil, 200, &at); err != nil {
		return "", err
	}
	return at.AccessToken, nil
}

// Do sends body as JSON (none when nil) with the token in X-Auth-Token, expects the status
// want, and decodes the answer into out when out is not nil.
func (c *Client) Do(ctx context.Context, method, path, token string, body any, want int, out any) error {
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			return err
		}
	}
	var raw []byte
	if err := c.DoRaw(ctx, method, path, token, "application/json", b, want, &raw); err != nil {
		return err
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	return nil
}

// DoRaw sends body with the content type, expects the status want, and returns the answer's
// bytes in out when out is not nil. Its errors never carry the token of a token sign-in path.
func (c *Client) DoRaw(ctx context.Context, method, path, token, contentType string, body []byte, want int, out *[]byte) error {
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if body != nil && contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	res, err := c.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	rb, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	if res.StatusCode != want {
		// Strip the path's tokens from the message: they are credentials.
		p := path
		if strings.HasPrefix(p, "/api/signin/token/") {
			p = "/api/signin/token/…"
		}
		return fmt.Errorf("%s %s: %d (want %d): %s", method, p, res.StatusCode, want, bytes.TrimSpace(rb))
	}
	if out != nil {
		*out = rb
	}
	return nil
}
