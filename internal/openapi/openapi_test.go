package openapi_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/dispatch24/dispatch24/internal/openapi"
	"github.com/dispatch24/dispatch24/internal/openapi/model"
	"github.com/pb33f/libopenapi"
	validator "github.com/pb33f/libopenapi-validator"
	"go.yaml.in/yaml/v4"
)

// TestDocumentIsOpenAPI31 validates the served JSON against the OpenAPI 3.1 specification's
// schema and builds its model, which resolves every $ref.
func TestDocumentIsOpenAPI31(t *testing.T) {
	t.Parallel()
	doc, err := openapi.JSON()
	if err != nil {
		t.Fatal(err)
	}
	d, err := libopenapi.NewDocument(doc)
	if err != nil {
		t.Fatal(err)
	}
	if v := d.GetVersion(); !strings.HasPrefix(v, "3.1.") {
		t.Fatalf("openapi version %q, want 3.1.x", v)
	}
	if _, err := d.BuildV3Model(); err != nil {
		t.Fatalf("building the model: %v", err)
	}
	v, errs := validator.NewValidator(d)
	if len(errs) > 0 {
		t.Fatalf("validator: %v", errs)
	}
	if ok, verrs := v.ValidateDocument(); !ok {
		for _, e := range verrs {
			t.Errorf("%s: %s", e.Message, e.Reason)
			for _, s := range e.SchemaValidationErrors {
				t.Errorf("  %s at %s (%s)", s.Reason, s.FieldPath, s.KeywordLocation)
			}
		}
	}
}

// TestJSONIsTheYAML checks the conversion: the JSON decodes to the same value the YAML does.
func TestJSONIsTheYAML(t *testing.T) {
	t.Parallel()
	doc, err := openapi.JSON()
	if err != nil {
		t.Fatal(err)
	}
	var fromJSON, fromYAML any
	if err := json.Unmarshal(doc, &fromJSON); err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(openapi.YAML(), &fromYAML); err != nil {
		t.Fatal(err)
	}
	// Through JSON once, so both have JSON's types (float64 numbers, map[string]any).
	b, _ := json.Marshal(fromYAML)
	_ = json.Unmarshal(b, &fromYAML)
	if !reflect.DeepEqual(fromJSON, fromYAML) {
		t.Fatal("the JSON document differs from its YAML source")
	}
	if !strings.HasPrefix(string(doc), `{"openapi":"3.1.0","info":`) {
		t.Errorf("keys not in source order: %.60s", doc)
	}
}

// TestEveryOperationDocumented checks what each operation must carry for clients and the
// rendered reference: an operationId (unique), a tag, a summary, and problem codes for every
// error response.
func TestEveryOperationDocumented(t *testing.T) {
	t.Parallel()
	_, m, err := model.Load()
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	n := 0
	for path, item := range m.Paths.PathItems.FromOldest() {
		for method, op := range item.GetOperations().FromOldest() {
			n++
			name := strings.ToUpper(method) + " " + path
			if op.OperationId == "" || op.Summary == "" || len(op.Tags) == 0 {
				t.Errorf("%s: needs an operationId, a summary and a tag", name)
			}
			if prev, dup := ids[op.OperationId]; dup {
				t.Errorf("%s: operationId %q already names %s", name, op.OperationId, prev)
			}
			ids[op.OperationId] = name
			for code, resp := range op.Responses.Codes.FromOldest() {
				if code[0] != '4' && code[0] != '5' {
					continue
				}
				if len(model.ProblemCodes(resp.Content)) == 0 {
					t.Errorf("%s %s: an error response needs problem codes", name, code)
				}
			}
		}
	}
	ops, err := openapi.Operations()
	if err != nil {
		t.Fatal(err)
	}
	if n != len(ops) || n < 40 {
		t.Errorf("model has %d operations, Operations() %d", n, len(ops))
	}
}

func TestHandler(t *testing.T) {
	t.Parallel()
	h, err := openapi.Handler()
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", openapi.Path, nil))
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("%d %q", w.Code, w.Header().Get("Content-Type"))
	}
	if cc := w.Header().Get("Cache-Control"); !strings.Contains(cc, "public") {
		t.Errorf("Cache-Control %q", cc)
	}
	doc, _ := openapi.JSON()
	if w.Body.String() != string(doc) {
		t.Error("served body is not the document")
	}
	etag := w.Header().Get("ETag")
	if etag == "" {
		t.Fatal("no ETag")
	}
	for _, inm := range []string{etag, "W/" + etag, `"other", ` + etag, "*"} {
		r := httptest.NewRequest("GET", openapi.Path, nil)
		r.Header.Set("If-None-Match", inm)
		w = httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusNotModified || w.Body.Len() != 0 {
			t.Errorf("If-None-Match %s: %d, %d bytes", inm, w.Code, w.Body.Len())
		}
	}
	r := httptest.NewRequest("GET", openapi.Path, nil)
	r.Header.Set("If-None-Match", `"stale"`)
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		t.Errorf("stale If-None-Match: %d", w.Code)
	}
}
