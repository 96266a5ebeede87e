package client

import (
	"context"
	"net/http"
	"time"
)

// SignIn signs in with a global account's e-mail and password and returns its refresh token.
// Wrong credentials are an *Error 401; too many failures a 429 with RetryAfter.
func (c *Client) SignIn(ctx context.Context, email, password string) (*Tokens, error) {
	var out Tokens
	err := c.do(ctx, http.MethodPost, "/api/signin", nil, "",
		map[string]string{"email": email, "password": password}, &out)
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// Refresh trades a refresh token for a short-lived access token; use it with WithToken.
func (c *Client) Refresh(ctx context.Context, refreshToken string) (string, error) {
	var out struct {
		AccessToken string `json:"accessToken"`
	}
	if err := c.do(ctx, http.MethodPost, "/api/refresh", nil, refreshToken, nil, &out); err != nil {
		return "", err
	}
	return out.AccessToken, nil
}

// SignOut revokes a refresh token.
func (c *Client) SignOut(ctx context.Context, refreshToken string) error {
	return c.do(ctx, http.MethodPost, "/api/signout", nil, refreshToken, nil, nil)
}

// CreatePersonalAccessToken creates a personal access token for the signed-in account (the
// client's token must be an access token: a personal access token cannot make another). The
// answer's Token is shown this once.
func (c *Client) CreatePersonalAccessToken(ctx context.Context, name string, expiresAt time.Time) (*PersonalAccessToken, error) {
	var out PersonalAccessToken
	in := map[string]string{"name": name, "expiresAt": expiresAt.UTC().Format(time.RFC3339)}
	if err := c.Do(ctx, http.MethodPost, "/api/admin/user/personal-access-tokens", nil, in, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
