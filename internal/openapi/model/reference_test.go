package model

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReferenceUpToDate fails when docs/api.md is not the rendering of the current document:
// run `go generate ./internal/openapi` after changing internal/openapi/openapi.yaml.
func TestReferenceUpToDate(t *testing.T) {
	t.Parallel()
	want, err := Reference()
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join("..", "..", "..", "docs", "api.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("docs/api.md is out of date: run go generate ./internal/openapi")
	}
}

// TestReferenceCoversTheDocument checks the rendering names every operation and schema, with
// each error response's problem codes.
func TestReferenceCoversTheDocument(t *testing.T) {
	t.Parallel()
	doc, err := Reference()
	if err != nil {
		t.Fatal(err)
	}
	_, m, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	for path, item := range m.Paths.PathItems.FromOldest() {
		for method, op := range item.GetOperations().FromOldest() {
			if !strings.Contains(text, "`"+strings.ToUpper(method)+" "+path+"` (`"+op.OperationId+"`)") {
				t.Errorf("%s %s is not rendered", method, path)
			}
		}
	}
	for name := range m.Components.Schemas.KeysFromOldest() {
		if !strings.Contains(text, "\n### "+name+"\n") {
			t.Errorf("schema %s is not rendered", name)
		}
	}
	for _, code := range []string{"`survey_not_found`", "`replay_running`", "`too_many_attempts`", "`pat_not_allowed`"} {
		if !strings.Contains(text, code) {
			t.Errorf("problem code %s is not rendered", code)
		}
	}
}
