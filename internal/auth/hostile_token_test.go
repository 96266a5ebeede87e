package auth_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/dispatch24/dispatch24/internal/auth"
	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/internal/store/storetest"
)

// TestHostileTokens: every forged, misused or damaged token gets 401 and nothing else, on an
// authenticated route and on /api/refresh.
func TestHostileTokens(t *testing.T) {
	t.Parallel()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		f := setup(t, db)
		u := f.createUser("root@example.org", "correct horse", []string{"admin"})
		gone := f.createUser("gone@example.org", "correct horse", []string{"admin"})
		refresh, access := f.login("root@example.org", "correct horse")
		goneRefresh, goneAccess := f.login("gone@example.org", "correct horse")
		if err := f.svc.DeleteUser(t.Context(), gone.ID); err != nil {
			t.Fatal(err)
		}
		revoked := f.signIn("root@example.org", "correct horse")
		want(t, f.do("POST", "/api/signout", nil, token(revoked)), http.StatusNoContent, "")
		now := f.clock.Now()

		claims := func(typ string, mod func(*auth.Claims)) *auth.Claims {
			c := &auth.Claims{Type: typ, UserID: u.ID, Roles: []string{"admin"}}
			c.Subject, c.Issuer, c.ID = u.ID, "intake24", "jti-forged"
			c.IssuedAt, c.ExpiresAt = jwt.NewNumericDate(now), jwt.NewNumericDate(now.Add(5*time.Minute))
			if mod != nil {
				mod(c)
			}
			return c
		}
		hs := func(m jwt.SigningMethod, key []byte, c *auth.Claims) string {
			tok, err := jwt.NewWithClaims(m, c).SignedString(key)
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}
		good := func(c *auth.Claims) string { return hs(jwt.SigningMethodHS256, []byte(testSecret), c) }
		// unsigned builds a token with any header and an empty or given signature.
		unsigned := func(header map[string]any, c *auth.Claims, sig string) string {
			h, _ := json.Marshal(header)
			p, _ := json.Marshal(c)
			enc := base64.RawURLEncoding.EncodeToString
			return enc(h) + "." + enc(p) + "." + sig
		}
		rs, err := jwt.NewWithClaims(jwt.SigningMethodRS256, claims(auth.TypeAccess, nil)).SignedString(rsaKey)
		if err != nil {
			t.Fatal(err)
		}
		// HS/RS confusion: an RS256 header over an HMAC signature keyed with the public key.
		pubDER := rsaKey.PublicKey.N.Bytes()
		confused := func() string {
			tok := unsigned(map[string]any{"alg": "RS256", "typ": "JWT"}, claims(auth.TypeAccess, nil), "")
			sig, _ := jwt.SigningMethodHS256.Sign(strings.TrimSuffix(tok, "."), pubDER)
			return tok + base64.RawURLEncoding.EncodeToString(sig)
		}()
		// The secret, used with HS256 but announcing another alg.
		algSwap := func() string {
			tok := unsigned(map[string]any{"alg": "HS512", "typ": "JWT"}, claims(auth.TypeAccess, nil), "")
			sig, _ := jwt.SigningMethodHS256.Sign(strings.TrimSuffix(tok, "."), []byte(testSecret))
			return tok + base64.RawURLEncoding.EncodeToString(sig)
		}()

		asAccess := map[string]string{
			"alg none":                unsigned(map[string]any{"alg": "none", "typ": "JWT"}, claims(auth.TypeAccess, nil), ""),
			"alg None":                unsigned(map[string]any{"alg": "None"}, claims(auth.TypeAccess, nil), ""),
			"no alg":                  unsigned(map[string]any{"typ": "JWT"}, claims(auth.TypeAccess, nil), ""),
			"RS256":                   rs,
			"HS/RS confusion":         confused,
			"HS512 with our secret":   hs(jwt.SigningMethodHS512, []byte(testSecret), claims(auth.TypeAccess, nil)),
			"HS384 with our secret":   hs(jwt.SigningMethodHS384, []byte(testSecret), claims(auth.TypeAccess, nil)),
			"header alg swapped":      algSwap,
			"wrong key":               hs(jwt.SigningMethodHS256, []byte("another-secret-0123456789-abcdefghijklmnop"), claims(auth.TypeAccess, nil)),
			"empty key":               hs(jwt.SigningMethodHS256, []byte{}, claims(auth.TypeAccess, nil)),
			"wrong issuer":            good(claims(auth.TypeAccess, func(c *auth.Claims) { c.Issuer = "evil" })),
			"no issuer":               good(claims(auth.TypeAccess, func(c *auth.Claims) { c.Issuer = "" })),
			"expired":                 good(claims(auth.TypeAccess, func(c *auth.Claims) { c.ExpiresAt = jwt.NewNumericDate(now.Add(-time.Minute)) })),
			"no expiry":               good(claims(auth.TypeAccess, func(c *auth.Claims) { c.ExpiresAt = nil })),
			"not yet valid":           good(claims(auth.TypeAccess, func(c *auth.Claims) { c.NotBefore = jwt.NewNumericDate(now.Add(time.Minute)) })),
			"issued in the future":    good(claims(auth.TypeAccess, func(c *auth.Claims) { c.IssuedAt = jwt.NewNumericDate(now.Add(time.Minute)) })),
			"no iat":                  good(claims(auth.TypeAccess, func(c *auth.Claims) { c.IssuedAt = nil })),
			"no type":                 good(claims("", nil)),
			"other type":              good(claims("id", nil)),
			"no sub":                  good(claims(auth.TypeAccess, func(c *auth.Claims) { c.Subject = "" })),
			"userId differs from sub": good(claims(auth.TypeAccess, func(c *auth.Claims) { c.UserID = "usr_other" })),
			"unknown user":            good(claims(auth.TypeAccess, func(c *auth.Claims) { c.Subject, c.UserID = "usr_nobody", "usr_nobody" })),
			"respondent without survey": good(claims(auth.TypeAccess, func(c *auth.Claims) {
				c.Roles = []string{"respondent"}
			})),
			"respondent and admin": good(claims(auth.TypeAccess, func(c *auth.Claims) {
				c.Roles, c.SurveyID = []string{"respondent", "admin"}, "demo"
			})),
			"refresh used as access":    refresh,
			"revoked refresh as access": revoked,
			"deleted account":           goneAccess,
			"truncated":                 access[:len(access)-5],
			"truncated to two parts":    access[:strings.LastIndex(access, ".")],
			"signature removed":         access[:strings.LastIndex(access, ".")+1],
			"extra segment":             access + ".e30",
			"flipped payload": func() string {
				parts := strings.Split(access, ".")
				p, _ := base64.RawURLEncoding.DecodeString(parts[1])
				p = []byte(strings.Replace(string(p), `"admin"`, `"staff"`, 1))
				return parts[0] + "." + base64.RawURLEncoding.EncodeToString(p) + "." + parts[2]
			}(),
			"garbage":           "not a token",
			"1 MB of garbage":   strings.Repeat("A", 1<<20),
			"1 MB of dots":      strings.Repeat(".", 1<<20),
			"PAT prefix only":   auth.PATPrefix,
			"PAT garbage":       auth.PATPrefix + strings.Repeat("!", 43),
			"PAT unknown":       auth.PATPrefix + strings.Repeat("A", 43),
			"PAT too long":      auth.PATPrefix + strings.Repeat("A", 4000),
			"empty bearer":      "",
			"whitespace":        "   ",
			"JSON instead":      `{"alg":"none"}`,
			"base64 of nothing": "e30.e30.",
		}
		for name, tok := range asAccess {
			t.Run("access/"+name, func(t *testing.T) {
				for _, h := range []header{token(tok), {"Authorization", "Bearer " + tok}} {
					if h[1] == "" || strings.TrimSpace(h[1]) == "" {
						// An empty X-Auth-Token is no credential at all: still 401.
						h = header{"Authorization", "Bearer " + tok}
					}
					w := f.do("GET", "/test/global", nil, h)
					wantOnly401(t, w)
					w = f.do("GET", "/api/admin/user/personal-access-tokens", nil, h)
					wantOnly401(t, w)
				}
			})
		}
		if _, err := f.svc.AuthenticateToken(t.Context(), asAccess["expired"]); err != auth.ErrTokenExpired {
			t.Fatalf("expired: %v", err)
		}

		asRefresh := map[string]string{
			"access used as refresh": access,
			"revoked":                revoked,
			"deleted account":        goneRefresh,
			"forged jti":             good(claims(auth.TypeRefresh, nil)),
			"someone else's jti": good(claims(auth.TypeRefresh, func(c *auth.Claims) {
				c.ID = parseClaimsType(t, refresh, auth.TypeRefresh).ID
				c.Subject = gone.ID
			})),
			"alg none":        unsigned(map[string]any{"alg": "none"}, claims(auth.TypeRefresh, nil), ""),
			"wrong key":       hs(jwt.SigningMethodHS256, []byte("another-secret-0123456789-abcdefghijklmnop"), claims(auth.TypeRefresh, nil)),
			"expired":         good(claims(auth.TypeRefresh, func(c *auth.Claims) { c.ExpiresAt = jwt.NewNumericDate(now.Add(-time.Hour)) })),
			"wrong issuer":    good(claims(auth.TypeRefresh, func(c *auth.Claims) { c.Issuer = "evil" })),
			"truncated":       refresh[:len(refresh)-3],
			"1 MB of garbage": strings.Repeat("A", 1<<20),
		}
		for name, tok := range asRefresh {
			t.Run("refresh/"+name, func(t *testing.T) {
				wantOnly401(t, f.do("POST", "/api/refresh", nil, token(tok)))
				wantOnly401(t, f.do("POST", "/api/signout", nil, token(tok)))
			})
		}
		// The real tokens still work: nothing above did damage.
		want(t, f.do("GET", "/test/global", nil, token(access)), http.StatusOK, "")
		want(t, f.do("POST", "/api/refresh", nil, token(refresh)), http.StatusOK, "")
	})
}

// wantOnly401 checks a response is a plain 401 problem that carries nothing else.
func wantOnly401(t *testing.T, w interface {
	Result() *http.Response
}) {
	t.Helper()
	resp := w.Result()
	defer resp.Body.Close()
	var p map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
		t.Fatalf("status %d, undecodable body: %v", resp.StatusCode, err)
	}
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("status %d (%s), want 401: %v", resp.StatusCode, resp.Header.Get("Content-Type"), p)
	}
	switch p["code"] {
	case "invalid_token", "token_expired", "token_revoked", "unauthenticated":
	default:
		t.Fatalf("code %v", p["code"])
	}
	for k := range p {
		switch k {
		case "type", "title", "status", "detail", "code", "requestId":
		default:
			t.Fatalf("401 carries %s: %v", k, p)
		}
	}
	if d, _ := p["detail"].(string); strings.Contains(d, "signature") || strings.Contains(d, "usr_") {
		t.Fatalf("401 detail reveals why: %q", d)
	}
}
