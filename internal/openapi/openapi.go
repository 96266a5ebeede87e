// Package openapi holds the API's OpenAPI 3.1 document, a maintained source file
// (openapi.yaml) written next to the handlers it describes, and serves it as JSON at
// GET /api/openapi.json.
//
// The document is checked three ways: it validates as OpenAPI 3.1 (this package's tests),
// its operations are exactly the router's /api routes (cmd/api's tests), and the requests
// and responses of cmd/api's end-to-end tests are validated against it (package
// openapitest). docs/api.md is rendered from it by ./cmd/apidoc (go generate).
package openapi

//go:generate go run ./cmd/apidoc -o ../../docs/api.md

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"go.yaml.in/yaml/v4"
)

//go:embed openapi.yaml
var files embed.FS

// Path is the route the document is served at.
const Path = "/api/openapi.json"

// YAML returns the document's source.
func YAML() []byte {
	b, err := files.ReadFile("openapi.yaml")
	if err != nil {
		panic("openapi: the embedded document is missing: " + err.Error()) // a build defect
	}
	return b
}

// JSON returns the document as JSON, keeping the source's key order.
func JSON() ([]byte, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(YAML(), &doc); err != nil {
		return nil, fmt.Errorf("openapi: parsing the document: %w", err)
	}
	var buf bytes.Buffer
	if err := writeJSON(&buf, &doc); err != nil {
		return nil, fmt.Errorf("openapi: converting the document: %w", err)
	}
	return buf.Bytes(), nil
}

// writeJSON writes n as JSON: mappings as objects in their source order, sequences as
// arrays, scalars as the values they resolve to.
func writeJSON(buf *bytes.Buffer, n *yaml.Node) error {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) != 1 {
			return fmt.Errorf("line %d: want one document", n.Line)
		}
		return writeJSON(buf, n.Content[0])
	case yaml.AliasNode:
		return writeJSON(buf, n.Alias)
	case yaml.MappingNode:
		buf.WriteByte('{')
		for i := 0; i+1 < len(n.Content); i += 2 {
			if i > 0 {
				buf.WriteByte(',')
			}
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode {
				return fmt.Errorf("line %d: a mapping key must be a scalar", k.Line)
			}
			key, _ := json.Marshal(k.Value)
			buf.Write(key)
			buf.WriteByte(':')
			if err := writeJSON(buf, n.Content[i+1]); err != nil {
				return err
			}
		}
		buf.WriteByte('}')
	case yaml.SequenceNode:
		buf.WriteByte('[')
		for i, c := range n.Content {
			if i > 0 {
				buf.WriteByte(',')
			}
			if err := writeJSON(buf, c); err != nil {
				return err
			}
		}
		buf.WriteByte(']')
	case yaml.ScalarNode:
		var v any
		if err := n.Decode(&v); err != nil {
			return fmt.Errorf("line %d: %w", n.Line, err)
		}
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("line %d: %w", n.Line, err)
		}
		buf.Write(b)
	default:
		return fmt.Errorf("line %d: unexpected YAML node kind %v", n.Line, n.Kind)
	}
	return nil
}

// methods are the operation keys of an OpenAPI path item.
var methods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// Operations lists the document's operations as router patterns ("GET /api/signin"),
// sorted.
func Operations() ([]string, error) {
	var doc struct {
		Paths map[string]map[string]yaml.Node `yaml:"paths"`
	}
	if err := yaml.Unmarshal(YAML(), &doc); err != nil {
		return nil, fmt.Errorf("openapi: parsing the document: %w", err)
	}
	var ops []string
	for path, item := range doc.Paths {
		for key := range item {
			if slices.Contains(methods, key) {
				ops = append(ops, strings.ToUpper(key)+" "+path)
			}
		}
	}
	slices.Sort(ops)
	return ops, nil
}

// Handler serves the document as JSON: public, cacheable for five minutes, with an ETag
// that If-None-Match is answered 304 against.
func Handler() (http.Handler, error) {
	doc, err := JSON()
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(doc)
	etag := `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Cache-Control", "public, max-age=300")
		h.Set("ETag", etag)
		if matchesETag(r.Header.Get("If-None-Match"), etag) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		h.Set("Content-Type", "application/json")
		_, _ = w.Write(doc)
	}), nil
}

// matchesETag reports whether an If-None-Match value lists etag (or is "*"), with weak
// comparison as RFC 9110 has for If-None-Match.
func matchesETag(header, etag string) bool {
	for v := range strings.SplitSeq(header, ",") {
		v = strings.TrimPrefix(strings.TrimSpace(v), "W/")
		if v == "*" || v == etag {
			return true
		}
	}
	return false
}
