package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/internal/openapi"
	"github.com/dispatch24/dispatch24/internal/openapi/openapitest"
	"github.com/golang-jwt/jwt/v5"
)

// TestMain reports how much of the OpenAPI document the package's tests exercised: the
// documented operations whose exchanges openapitest validated.
func TestMain(m *testing.M) {
	code := m.Run()
	if seen := openapitest.Exercised(); len(seen) > 0 {
		all := openapitest.Operations()
		exchanges, accepted, acceptedOps := 0, 0, 0
		var missing, neverAccepted []string
		for _, op := range all {
			n := seen[op]
			exchanges += n.Exchanges
			accepted += n.Accepted
			switch {
			case n.Exchanges == 0:
				missing = append(missing, op)
			case n.Accepted == 0:
				neverAccepted = append(neverAccepted, op)
			default:
				acceptedOps++
			}
		}
		fmt.Printf("openapi: %d of %d documented operations exercised (%d exchanges validated); %d with accepted (2xx) exchanges (%d, requests validated too)\n",
			len(seen), len(all), exchanges, acceptedOps, accepted)
		if testing.Verbose() {
			fmt.Printf("openapi: not exercised: %s\nopenapi: never answered 2xx: %s\n", strings.Join(missing, ", "), strings.Join(neverAccepted, ", "))
		}
	}
	os.Exit(code)
}

// TestOpenAPIDocumentsEveryRoute compares the router run() builds with the document: every
// /api route is documented, and every documented operation is a route.
func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	t.Parallel()
	a := buildAPI(t, map[string]string{"DATA_DIR": t.TempDir()})
	var served []string
	for _, rt := range a.routes {
		_, path, _ := strings.Cut(rt.Pattern, " ")
		if strings.HasPrefix(path, "/api/") {
			served = append(served, rt.Pattern)
		}
	}
	documented, err := openapi.Operations()
	if err != nil {
		t.Fatal(err)
	}
	if len(served) < 40 {
		t.Fatalf("only %d /api routes registered", len(served))
	}
	for _, p := range served {
		if !slices.Contains(documented, p) {
			t.Errorf("route %s is not in internal/openapi/openapi.yaml", p)
		}
	}
	for _, op := range documented {
		if !slices.Contains(served, op) {
			t.Errorf("the document lists %s, which the router does not serve", op)
		}
	}
	t.Logf("%d /api routes, %d documented operations", len(served), len(documented))
}

// TestOpenAPIServed fetches the document from a running API, without credentials, and
// revalidates it with its ETag.
func TestOpenAPIServed(t *testing.T) {
	t.Parallel()
	a := buildAPI(t, map[string]string{"DATA_DIR": t.TempDir()})
	w := a.do(t, "GET", openapi.Path, "", "")
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("GET %s: %d %q", openapi.Path, w.Code, w.Header().Get("Content-Type"))
	}
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil || !strings.HasPrefix(doc.OpenAPI, "3.1.") {
		t.Fatalf("not an OpenAPI 3.1 document: %v %q", err, doc.OpenAPI)
	}
	if _, ok := doc.Paths[openapi.Path]["get"]; !ok {
		t.Errorf("the document does not list itself")
	}
	if cc := w.Header().Get("Cache-Control"); !strings.Contains(cc, "public") {
		t.Errorf("Cache-Control %q", cc)
	}
	r := w.Header().Get("ETag")
	req := a.req(t, "192.0.2.10:1234", "GET", openapi.Path, "", "", "", "If-None-Match", r)
	if req.Code != http.StatusNotModified {
		t.Errorf("If-None-Match: %d", req.Code)
	}
}

// TestOpenAPIHappyPaths drives the operations the other tests only refuse through to a 2xx
// answer, so their accepted requests and success bodies are validated against the document
// too (buildAPI's handler checks every exchange).
func TestOpenAPIHappyPaths(t *testing.T) {
	t.Parallel()
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(receiver.Close)
	a := buildAPI(t, map[string]string{"DATA_DIR": t.TempDir(), "ADMIN_PASSWORD": "admin password",
		"WEBHOOK_ALLOW_NETS": "127.0.0.0/8"})
	must := func(want int, method, path, body, tok string) map[string]any {
		t.Helper()
		w := a.do(t, method, path, body, tok)
		if w.Code != want {
			t.Fatalf("%s %s: %d, want %d: %s", method, path, w.Code, want, w.Body.String())
		}
		var out map[string]any
		_ = json.Unmarshal(w.Body.Bytes(), &out)
		return out
	}
	admin := a.token(t, "/api/signin", `{"email":"admin@localhost","password":"admin password"}`)

	// Survey with a jwtSecret, a respondent made by a third party's JWT, then read and deleted.
	secret := strings.Repeat("j", 40)
	must(201, "POST", "/api/admin/surveys", `{"id":"oa","name":"OA","allowGenUsers":true,"jwtSecret":"`+secret+`"}`, admin)
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"username": "third-party-1", "name": "Third", "customFields": []map[string]string{{"name": "site", "value": "a"}},
	}).SignedString([]byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	must(200, "POST", "/api/surveys/oa/create-user", `{"token":"`+tok+`"}`, "")
	must(200, "GET", "/api/admin/surveys/oa/respondents/third-party-1", "", admin)
	must(204, "DELETE", "/api/admin/surveys/oa/respondents/third-party-1", "", admin)

	// A global account read and deleted; a personal access token made and revoked.
	u := must(201, "POST", "/api/admin/users", `{"email":"oa@example.org","password":"staff password","roles":["staff"],"surveys":["oa"]}`, admin)
	must(200, "GET", "/api/admin/users/"+u["id"].(string), "", admin)
	must(204, "DELETE", "/api/admin/users/"+u["id"].(string), "", admin)
	pat := must(201, "POST", "/api/admin/user/personal-access-tokens", `{"name":"ci","expiresAt":"`+time.Now().Add(24*time.Hour).UTC().Format(time.RFC3339)+`"}`, admin)
	must(204, "DELETE", "/api/admin/user/personal-access-tokens/"+pat["id"].(string), "", admin)

	// A webhook: read, test-sent (which records a delivery), rotated; the delivery read and
	// replayed, alone and as a range whose progress is read.
	wh := must(201, "POST", "/api/admin/surveys/oa/webhooks", `{"url":"`+receiver.URL+`/hook","description":"oa"}`, admin)
	whPath := "/api/admin/surveys/oa/webhooks/" + wh["id"].(string)
	must(200, "GET", whPath, "", admin)
	sent := must(200, "POST", whPath+"/test", "", admin)
	if sent["delivered"] != true {
		t.Fatalf("test send: %v", sent)
	}
	must(200, "POST", whPath+"/rotate-secret", "", admin)
	dlv := "/api/admin/deliveries/" + sent["deliveryId"].(string)
	must(200, "GET", dlv, "", admin)
	must(202, "POST", dlv+"/replay", "", admin)
	since := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	until := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	rp := must(202, "POST", "/api/admin/deliveries/replay", `{"surveyId":"oa","status":["succeeded"],"since":"`+since+`","until":"`+until+`"}`, admin)
	must(200, "GET", "/api/admin/replays/"+rp["replayId"].(string), "", admin)

	// Signing out revokes the refresh token.
	w := a.do(t, "POST", "/api/signin", `{"email":"admin@localhost","password":"admin password"}`, "")
	var rt struct{ RefreshToken string }
	_ = json.Unmarshal(w.Body.Bytes(), &rt)
	must(204, "POST", "/api/signout", "", rt.RefreshToken)
}
