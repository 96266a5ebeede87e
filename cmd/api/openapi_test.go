package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/dispatch24/dispatch24/internal/openapi"
	"github.com/dispatch24/dispatch24/internal/openapi/openapitest"
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
