// Package client is a typed Go client of the Dispatch24 API: signing in, webhooks,
// deliveries and their attempt logs, and replays of one delivery or a range.
//
// Authenticate with a personal access token (created at POST
// /api/admin/user/personal-access-tokens, or by an operator) through WithToken; or sign in
// with SignIn and trade the refresh token for an access token with Refresh. Either is sent
// in X-Auth-Token, and never to another address: the client does not follow redirects.
//
// Every method takes a context and returns, when the API refuses, an *Error carrying the
// problem+json fields (Code, Detail, the bad fields), so callers branch on
// errors.As(err, &apiErr) and apiErr.Code.
package client
