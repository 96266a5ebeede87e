package auth_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"

	"github.com/dispatch24/dispatch24/internal/auth"
	"github.com/dispatch24/dispatch24/internal/store/storetest"
)

// FuzzTokens feeds arbitrary strings to the token checks: they never panic, fail only with
// the package's token errors, and accept only tokens that verify as HS256 with our secret.
func FuzzTokens(f *testing.F) {
	fx := setup(f, storetest.SQLite(f))
	fx.createUser("root@example.org", "correct horse", []string{"admin"})
	refresh, access := fx.login("root@example.org", "correct horse")
	for _, s := range []string{
		access, refresh, "", "a.b.c", "e30.e30.", auth.PATPrefix, auth.PATPrefix + strings.Repeat("A", 43),
		"eyJhbGciOiJub25lIn0.eyJ0eXBlIjoiYWNjZXNzIn0.", access[:len(access)-1], access + "A",
		strings.Replace(access, ".", "..", 1),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		p, err := fx.svc.AuthenticateToken(t.Context(), tok)
		checkTokenResult(t, tok, err, p != nil, auth.TypeAccess)
		_, err = fx.svc.Refresh(t.Context(), tok)
		checkTokenResult(t, tok, err, err == nil, auth.TypeRefresh)
	})
}

func checkTokenResult(t *testing.T, tok string, err error, ok bool, typ string) {
	t.Helper()
	if err != nil {
		if !errors.Is(err, auth.ErrInvalidToken) && !errors.Is(err, auth.ErrTokenExpired) && !errors.Is(err, auth.ErrTokenRevoked) {
			t.Fatalf("unexpected error kind: %v", err)
		}
		return
	}
	if !ok {
		t.Fatal("neither an error nor a result")
	}
	if strings.HasPrefix(tok, auth.PATPrefix) {
		t.Fatalf("accepted an unknown personal access token %q", tok)
	}
	var c auth.Claims
	_, perr := jwt.NewParser(jwt.WithValidMethods([]string{"HS256"}), jwt.WithoutClaimsValidation()).
		ParseWithClaims(tok, &c, func(*jwt.Token) (any, error) { return []byte(testSecret), nil })
	if perr != nil || c.Type != typ {
		t.Fatalf("accepted %q (type %q): %v", tok, c.Type, perr)
	}
}

// FuzzJSONBodies sends arbitrary bodies to every route that reads one: none answers 5xx or a
// status outside its contract.
func FuzzJSONBodies(f *testing.F) {
	fx := setup(f, storetest.SQLite(f))
	fx.createSurvey("demo")
	root := fx.createUser("root@example.org", "correct horse", []string{"admin"})
	staff := fx.createUser("staff@example.org", "correct horse", []string{"staff"}, "demo")
	_, admin := fx.login("root@example.org", "correct horse")
	routes := []struct {
		method, path string
		allowed      []int
	}{
		{"POST", "/api/signin", []int{200, 400, 401, 413, 415, 429}},
		{"POST", "/api/signin/alias", []int{200, 400, 401, 413, 415, 429}},
		{"POST", "/api/admin/users", []int{201, 400, 409, 413, 415}},
		{"PATCH", "/api/admin/users/" + staff.ID, []int{200, 400, 409, 413, 415}},
		{"PATCH", "/api/admin/users/" + root.ID, []int{200, 400, 409, 413, 415}},
		{"POST", "/api/admin/user/personal-access-tokens", []int{201, 400, 413, 415}},
	}
	for _, s := range []string{
		`{"email":"root@example.org","password":"correct horse"}`,
		`{"surveyId":"demo","userName":"u","password":"p"}`,
		`{"email":"a@b","password":"12345678","roles":["staff"],"surveys":["demo"]}`,
		`{"roles":null,"surveys":[],"disabled":false,"name":"\u0000"}`,
		`{"name":"ci","expiresAt":"2027-01-01T00:00:00Z"}`,
		`{"expiresAt":"9999-12-31T23:59:59+23:59"}`,
		`[]`, `null`, `"x"`, `{"email":{"$ne":1}}`, `{"password":"` + strings.Repeat("é", 600) + `"}`,
	} {
		for i := range routes {
			f.Add(uint8(i), []byte(s))
		}
	}
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		rt := routes[int(route)%len(routes)]
		w := doReq(t, fx.rt, "192.0.2.1:4711", rt.method, rt.path, body, token(admin))
		for _, st := range rt.allowed {
			if w.Code == st {
				return
			}
		}
		t.Fatalf("%s %s %q: %d %s", rt.method, rt.path, body, w.Code, w.Body.String())
	})
}
