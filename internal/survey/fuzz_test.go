package survey

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/dispatch24/dispatch24/internal/httpapi"
	"github.com/dispatch24/dispatch24/internal/store/storetest"
)

func FuzzParseImport(f *testing.F) {
	for _, s := range []string{
		"username,password,name,cohort\nalice,pw,Alice,A\nbob,,,\n",
		"\uFEFFusername\r\na\r\nb\r\n",
		"username,note\n\"a\",\"multi\nline\"\n",
		"username\na\"b\n",
		"username,x\na\n",
		"username,username\n",
		"",
		"name\nx\n",
		"username\n\xff\n",
		"username,\"\"\"q\"\"\"\n1,2\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		rows, err := ParseImport(bytes.NewReader(data))
		if err != nil {
			var ie *ImportErrors
			if !errors.As(err, &ie) || ie.Total == 0 || len(ie.Errors) == 0 || len(ie.Errors) > MaxImportErrors {
				t.Fatalf("error %v", err)
			}
			for _, e := range ie.Errors {
				if e.Line < 1 || e.Field == "" || e.Message == "" {
					t.Fatalf("bad problem %+v", e)
				}
			}
			return
		}
		seen := map[string]bool{}
		last := 1
		for _, r := range rows {
			if checkUsername(r.Username) != "" || seen[r.Username] || r.Line <= last {
				t.Fatalf("row %+v accepted", r)
			}
			seen[r.Username] = true
			last = r.Line
			if r.Password != "" && checkPassword(r.Password) != "" || checkName(r.Name) != "" {
				t.Fatalf("row %+v accepted", r)
			}
			if msgs := checkCustomFields("f", r.CustomFields); len(msgs) > 0 {
				t.Fatalf("row %+v accepted: %v", r, msgs)
			}
		}
	})
}

// hs256 signs an arbitrary payload, which need not be JSON, the way a third party could.
func hs256(payload []byte, secret string) string {
	enc := base64.RawURLEncoding
	head := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." + enc.EncodeToString(payload)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(head))
	return head + "." + enc.EncodeToString(mac.Sum(nil))
}

// checkProblem fails unless err is a 400 or 403 problem.
func checkProblem(t *testing.T, err error) {
	t.Helper()
	var p *httpapi.Problem
	if !errors.As(err, &p) || (p.Status != http.StatusBadRequest && p.Status != http.StatusForbidden) || p.Code == "" {
		t.Fatalf("error %v is not a 400 or 403 problem", err)
	}
}

// FuzzUserClaims signs arbitrary payloads with the survey's secret: every one is answered
// with claims that pass the checks or with a 400/403 problem.
func FuzzUserClaims(f *testing.F) {
	for _, s := range []string{
		`{"username":"a"}`,
		`{"username":"a","password":"p","name":"n","redirectUrl":"https://x.org/r","customFields":[{"name":"k","value":"v"}]}`,
		`{"username":1}`,
		`{"username":"a","customFields":[{"name":"k"}]}`,
		`{"username":"a","customFields":{"k":"v"}}`,
		`{"username":"a","exp":"x"}`,
		`{"username":"a","exp":1}`,
		`{"username":"a","nbf":99999999999}`,
		`{"username":"a","redirectUrl":"javascript:x"}`,
		`[]`,
		`null`,
		`not json`,
		`{"username":"a\u0000"}`,
	} {
		f.Add([]byte(s))
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, payload []byte) {
		c, err := ParseUserToken(hs256(payload, testSecret), testSecret, now)
		if err != nil {
			checkProblem(t, err)
			return
		}
		if checkUsername(c.Username) != "" || (c.Password != "" && checkPassword(c.Password) != "") ||
			(c.RedirectURL != "" && checkAbsoluteURL(c.RedirectURL) != "") || len(checkCustomFields("f", c.CustomFields)) > 0 ||
			(c.Name != nil && checkName(*c.Name) != "") {
			t.Fatalf("claims %+v accepted from %q", c, payload)
		}
	})
}

// FuzzUserToken feeds arbitrary token strings (forged headers, bad encodings, other
// algorithms): none is accepted unless it is HS256/HS512 with the secret.
func FuzzUserToken(f *testing.F) {
	good, _ := jwt.NewWithClaims(jwt.SigningMethodHS512, jwt.MapClaims{"username": "u"}).SignedString([]byte(testSecret))
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"username": "u"}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	for _, s := range []string{good, none, "", ".", "..", "a.b.c", "eyJhbGciOiJIUzI1NiJ9..", strings.Repeat("a", 300)} {
		f.Add(s)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, token string) {
		c, err := ParseUserToken(token, testSecret, now)
		if err != nil {
			checkProblem(t, err)
			return
		}
		// Accepted: it must verify with the secret under one of the two algorithms.
		if _, err := jwt.Parse(token, func(*jwt.Token) (any, error) { return []byte(testSecret), nil },
			jwt.WithValidMethods(CreateUserAlgorithms), jwt.WithTimeFunc(func() time.Time { return now })); err != nil || c.Username == "" {
			t.Fatalf("accepted %q: %v", token, err)
		}
	})
}

// FuzzCreateUserBody posts arbitrary bodies to the create-user route: no body gets a 5xx.
func FuzzCreateUserBody(f *testing.F) {
	good := hs256([]byte(`{"username":"fuzz"}`), testSecret)
	for _, s := range []string{
		`{"token":"` + good + `"}`,
		`{"token":""}`,
		`{"token":null}`,
		`{"token":["a"]}`,
		`{}`,
		`[]`,
		`{"token":"a.b.c"}`,
		`{"token":"x"} trailing`,
		``,
	} {
		f.Add([]byte(s))
	}
	db := storetest.SQLite(f)
	svc, err := New(Config{DB: db, Secrets: testKeyring(f), SurveyAppURL: testAppURL, PasswordParams: cheapParams, ImportPasswordParams: cheapParams})
	if err != nil {
		f.Fatal(err)
	}
	if err := svc.Store().CreateSurvey(f.Context(), Survey{ID: "s1", Name: "s1", AllowGenUsers: true, JWTSecret: testSecret,
		AuthURLTokenLength: 32, CreatedAt: time.Now(), UpdatedAt: time.Now()}); err != nil {
		f.Fatal(err)
	}
	rt := httpapi.NewRouter(headerAuth{}, svc.logger)
	svc.Register(rt)
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest("POST", "/api/surveys/s1/create-user", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		rt.ServeHTTP(rec, req)
		if rec.Code >= 500 || (rec.Code != http.StatusOK && !strings.Contains(rec.Header().Get("Content-Type"), "problem+json")) {
			t.Fatalf("%q: %d %s", body, rec.Code, rec.Body)
		}
	})
}

// FuzzDecodeCursor: a respondent-list cursor either is refused or names an id the store can
// take (valid UTF-8 without NUL), and encoding what it names gives a cursor that decodes to
// the same position.
func FuzzDecodeCursor(f *testing.F) {
	for _, s := range []string{
		encodeCursor(&Respondent{ID: "rsp_1", CreatedAt: time.UnixMicro(1767225600000000)}),
		base64.RawURLEncoding.EncodeToString([]byte("1:\x00")),
		base64.RawURLEncoding.EncodeToString([]byte("1:\xff")),
		base64.RawURLEncoding.EncodeToString([]byte("-9223372036854775808:a:b")),
		"", "!!", "MTo",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := decodeCursor(s)
		if err != nil {
			if c != nil {
				t.Fatal("a refused cursor came with a position")
			}
			return
		}
		if c.ID == "" || !httpapi.ValidText(c.ID) {
			t.Fatalf("cursor %q names id %q", s, c.ID)
		}
		again, err := decodeCursor(encodeCursor(&Respondent{ID: c.ID, CreatedAt: c.CreatedAt}))
		if err != nil || *again != *c {
			t.Fatalf("cursor %+v does not round-trip: %+v %v", *c, again, err)
		}
	})
}
