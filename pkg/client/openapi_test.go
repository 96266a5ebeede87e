package client_test

import (
	"encoding/json"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/dispatch24/dispatch24/pkg/client"
)

// clientRequests are the JSON bodies the client sends, by route.
var clientRequests = map[string]any{
	"POST /api/admin/surveys/{surveyId}/webhooks":              client.NewWebhook{},
	"PATCH /api/admin/surveys/{surveyId}/webhooks/{webhookId}": client.WebhookPatch{},
	"POST /api/admin/deliveries/replay":                        client.ReplayRange{},
}

// TestClientMatchesOpenAPI checks the client against the document the API serves at GET
// /api/openapi.json: each route the client calls is an operation there, the fields of each
// body it sends are properties of the operation's request schema, and the fields of each
// answer type are the properties of the success response's schema (for a listing, of its
// items), none missing on either side (optional client fields may be absent from a schema).
func TestClientMatchesOpenAPI(t *testing.T) {
	t.Parallel()
	resp, err := http.Get(apiURL + "/api/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		Components struct {
			Schemas   map[string]json.RawMessage `json:"schemas"`
			Responses map[string]json.RawMessage `json:"responses"`
		} `json:"components"`
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/openapi.json: %d", resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	// properties returns a schema's property names, following $ref and allOf; for a listing
	// ({"items": [...]}) those of its items.
	var properties func(raw json.RawMessage, listing bool) []string
	properties = func(raw json.RawMessage, listing bool) []string {
		var s struct {
			Ref        string                     `json:"$ref"`
			AllOf      []json.RawMessage          `json:"allOf"`
			AnyOf      []json.RawMessage          `json:"anyOf"`
			OneOf      []json.RawMessage          `json:"oneOf"`
			Properties map[string]json.RawMessage `json:"properties"`
			Items      json.RawMessage            `json:"items"`
		}
		if err := json.Unmarshal(raw, &s); err != nil {
			t.Fatalf("schema %s: %v", raw, err)
		}
		if s.Ref != "" {
			name := strings.TrimPrefix(s.Ref, "#/components/schemas/")
			target, ok := doc.Components.Schemas[name]
			if !ok {
				t.Fatalf("unresolvable %s", s.Ref)
			}
			return properties(target, listing)
		}
		var out []string
		for _, sub := range slices.Concat(s.AllOf, s.AnyOf, s.OneOf) {
			out = append(out, properties(sub, false)...)
		}
		if items, ok := s.Properties["items"]; listing && ok {
			var arr struct {
				Items json.RawMessage `json:"items"`
			}
			if err := json.Unmarshal(items, &arr); err == nil && arr.Items != nil {
				return properties(arr.Items, false)
			}
		}
		for k := range s.Properties {
			out = append(out, k)
		}
		return out
	}
	type media struct {
		Ref     string `json:"$ref"`
		Content map[string]struct {
			Schema json.RawMessage `json:"schema"`
		} `json:"content"`
	}
	for _, r := range clientRoutes {
		key := r.Method + " " + r.Path
		raw, ok := doc.Paths[r.Path][strings.ToLower(r.Method)]
		if !ok {
			t.Errorf("%s: not an operation of the OpenAPI document", key)
			continue
		}
		var op struct {
			RequestBody *media           `json:"requestBody"`
			Responses   map[string]media `json:"responses"`
		}
		if err := json.Unmarshal(raw, &op); err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		if req, ok := clientRequests[key]; ok {
			if op.RequestBody == nil || op.RequestBody.Content["application/json"].Schema == nil {
				t.Errorf("%s: the document has no JSON request body", key)
			} else {
				props := properties(op.RequestBody.Content["application/json"].Schema, false)
				names, _ := jsonFields(reflect.TypeOf(req))
				for _, n := range names {
					if !slices.Contains(props, n) {
						t.Errorf("%s: %T sends %q, which the document's request schema lacks (it has %v)", key, req, n, props)
					}
				}
			}
		}
		if r.Response == nil {
			continue
		}
		var schema json.RawMessage
		for _, code := range []string{"200", "201", "202"} {
			m, ok := op.Responses[code]
			if ok && m.Ref != "" {
				if err := json.Unmarshal(doc.Components.Responses[strings.TrimPrefix(m.Ref, "#/components/responses/")], &m); err != nil {
					t.Fatalf("%s: %s: %v", key, m.Ref, err)
				}
			}
			if ok && m.Content["application/json"].Schema != nil {
				schema = m.Content["application/json"].Schema
				break
			}
		}
		if schema == nil {
			t.Errorf("%s: the document has no JSON success response", key)
			continue
		}
		props := properties(schema, true)
		// Optional (omitempty) fields may be absent from one route's schema: a listing's
		// deliveries have no attempt log.
		names, always := jsonFields(reflect.TypeOf(r.Response))
		for _, n := range always {
			if !slices.Contains(props, n) {
				t.Errorf("%s: %T has %q, which the document's response schema lacks", key, r.Response, n)
			}
		}
		for _, p := range props {
			if !slices.Contains(names, p) {
				t.Errorf("%s: the document answers %q, which %T lacks", key, p, r.Response)
			}
		}
	}
}
