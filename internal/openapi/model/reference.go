package model

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/pb33f/libopenapi/datamodel/high/base"
	v3 "github.com/pb33f/libopenapi/datamodel/high/v3"
)

// Reference renders the document as Markdown (docs/api.md): the operations by tag, each with
// its parameters, request body and responses with their problem codes, then the schemas.
func Reference() ([]byte, error) {
	_, m, err := Load()
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("<!-- Generated from internal/openapi/openapi.yaml by `go generate ./internal/openapi`; do not edit. -->\n\n")
	p("# %s (version %s)\n\n%s\n\n", m.Info.Title, m.Info.Version, m.Info.Summary)
	p("The machine-readable document is served at `GET /api/openapi.json` (OpenAPI %s); its source is\n", m.Version)
	p("[`internal/openapi/openapi.yaml`](../internal/openapi/openapi.yaml).\n\n")
	p("%s\n", strings.TrimSpace(m.Info.Description))

	p("\n## Authentication\n\n| scheme | how | meaning |\n|---|---|---|\n")
	for name, s := range m.Components.SecuritySchemes.FromOldest() {
		how := "`" + s.Name + "` " + s.In
		if s.Type == "http" {
			how = "`Authorization: " + cell(strings.ToUpper(s.Scheme[:1])+s.Scheme[1:]) + " <token>`"
		}
		p("| `%s` | %s | %s |\n", name, how, cell(s.Description))
	}

	type entry struct {
		method, path string
		item         *v3.PathItem
		op           *v3.Operation
	}
	byTag := map[string][]entry{}
	for path, item := range m.Paths.PathItems.FromOldest() {
		for method, op := range item.GetOperations().FromOldest() {
			tag := "other"
			if len(op.Tags) > 0 {
				tag = op.Tags[0]
			}
			byTag[tag] = append(byTag[tag], entry{strings.ToUpper(method), path, item, op})
		}
	}

	p("\n## Operations\n\n")
	for _, tag := range m.Tags {
		p("- [%s](#%s): %s\n", tag.Name, anchor(tag.Name), tag.Description)
	}
	for _, tag := range m.Tags {
		p("\n## %s\n\n%s\n\n| operation | summary |\n|---|---|\n", tag.Name, tag.Description)
		for _, e := range byTag[tag.Name] {
			p("| [`%s %s`](#%s) | %s |\n", e.method, e.path, anchor(e.op.OperationId), cell(e.op.Summary))
		}
		for _, e := range byTag[tag.Name] {
			renderOperation(&b, m, e.method, e.path, e.item, e.op)
		}
	}

	p("\n## Schemas\n")
	for name, sp := range m.Components.Schemas.FromOldest() {
		s := sp.Schema()
		p("\n### %s\n\n", name)
		if s.Description != "" {
			p("%s\n\n", strings.TrimSpace(s.Description))
		}
		renderSchema(&b, s)
	}
	return b.Bytes(), nil
}

func renderOperation(b *bytes.Buffer, m *v3.Document, method, path string, item *v3.PathItem, op *v3.Operation) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	// The heading is the operationId, so links can use anchor(operationId).
	p("\n### %s\n\n`%s %s` (`%s`)\n\n", op.OperationId, method, path, op.OperationId)
	p("%s.", op.Summary)
	if op.Description != "" {
		p(" %s", strings.TrimSpace(op.Description))
	}
	p("\n\n")
	sec := op.Security
	if sec == nil {
		sec = m.Security
	}
	var schemes []string
	for _, req := range sec {
		if req.Requirements == nil {
			continue
		}
		for name := range req.Requirements.KeysFromOldest() {
			schemes = append(schemes, "`"+name+"`")
		}
	}
	if len(schemes) == 0 {
		p("Authentication: none.\n\n")
	} else {
		p("Authentication: %s.\n\n", strings.Join(schemes, " or "))
	}
	params := append(append([]*v3.Parameter{}, item.Parameters...), op.Parameters...)
	if len(params) > 0 {
		p("| parameter | in | type | required | description |\n|---|---|---|---|---|\n")
		for _, prm := range params {
			req := prm.Required != nil && *prm.Required
			p("| `%s` | %s | %s | %s | %s |\n", prm.Name, prm.In, typeOf(prm.Schema), yesNo(req), cell(prm.Description))
		}
		p("\n")
	}
	if rb := op.RequestBody; rb != nil && rb.Content != nil {
		for mt, c := range rb.Content.FromOldest() {
			p("Request body (`%s`): %s\n\n", mt, typeOf(c.Schema))
		}
	}
	p("| status | meaning | body | problem codes |\n|---|---|---|---|\n")
	for code, resp := range op.Responses.Codes.FromOldest() {
		body := "none"
		if resp.Content != nil {
			var parts []string
			for mt, c := range resp.Content.FromOldest() {
				t := "`" + mt + "`"
				if mt != "application/problem+json" && c.Schema != nil {
					t += " " + typeOf(c.Schema)
				} else if mt == "application/problem+json" {
					t = "[Problem](#problem)"
				}
				parts = append(parts, t)
			}
			body = strings.Join(parts, ", ")
		}
		codes := ProblemCodes(resp.Content)
		for i, c := range codes {
			codes[i] = "`" + c + "`"
		}
		p("| %s | %s | %s | %s |\n", code, cell(resp.Description), body, strings.Join(codes, ", "))
	}
}

func renderSchema(b *bytes.Buffer, s *base.Schema) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	for _, sub := range s.AllOf {
		if sub.IsReference() {
			p("All the fields of %s, and:\n\n", typeOf(sub))
		} else {
			renderSchema(b, sub.Schema())
		}
	}
	if s.Properties == nil || s.Properties.Len() == 0 {
		if len(s.AllOf) == 0 {
			p("Type: %s.\n", describe(s))
		}
		return
	}
	p("| field | type | required | description |\n|---|---|---|---|\n")
	for name, prop := range s.Properties.FromOldest() {
		req := false
		for _, r := range s.Required {
			req = req || r == name
		}
		desc := ""
		if ps := prop.Schema(); ps != nil && !prop.IsReference() {
			desc = ps.Description
		}
		p("| `%s` | %s | %s | %s |\n", name, typeOf(prop), yesNo(req), cell(desc))
	}
}

// typeOf names a schema for a table: a link for a reference, else its type.
func typeOf(sp *base.SchemaProxy) string {
	if sp == nil {
		return "any"
	}
	if sp.IsReference() {
		ref := sp.GetReference()
		name := ref[strings.LastIndex(ref, "/")+1:]
		return "[" + name + "](#" + anchor(name) + ")"
	}
	s := sp.Schema()
	if s == nil {
		return "any"
	}
	return describe(s)
}

// describe writes an inline schema's type with its constraints.
func describe(s *base.Schema) string {
	var alts []string
	for _, sub := range append(append([]*base.SchemaProxy{}, s.AnyOf...), s.OneOf...) {
		alts = append(alts, typeOf(sub))
	}
	if len(alts) > 0 {
		return strings.Join(alts, " or ")
	}
	var parts []string
	for _, t := range s.Type {
		if t == "array" && s.Items != nil && s.Items.N == 0 {
			parts = append(parts, "array of "+typeOf(s.Items.A))
			continue
		}
		parts = append(parts, t)
	}
	t := strings.Join(parts, " or ")
	if t == "" {
		t = "any"
	}
	var notes []string
	if s.Format != "" {
		notes = append(notes, s.Format)
	}
	if len(s.Enum) > 0 {
		var vs []string
		for _, e := range s.Enum {
			vs = append(vs, "`"+e.Value+"`")
		}
		notes = append(notes, "one of "+strings.Join(vs, ", "))
	}
	if s.Pattern != "" {
		notes = append(notes, "`"+s.Pattern+"`")
	}
	if s.Minimum != nil {
		notes = append(notes, fmt.Sprintf("≥ %v", *s.Minimum))
	}
	if s.Maximum != nil {
		notes = append(notes, fmt.Sprintf("≤ %v", *s.Maximum))
	}
	if s.MinLength != nil {
		notes = append(notes, fmt.Sprintf("at least %d characters", *s.MinLength))
	}
	if s.MaxLength != nil {
		notes = append(notes, fmt.Sprintf("at most %d characters", *s.MaxLength))
	}
	if s.MinItems != nil {
		notes = append(notes, fmt.Sprintf("at least %d items", *s.MinItems))
	}
	if s.Default != nil {
		notes = append(notes, "default "+defaultText(s))
	}
	if len(notes) > 0 {
		t += " (" + strings.Join(notes, "; ") + ")"
	}
	return t
}

func defaultText(s *base.Schema) string {
	if s.Default.Value != "" {
		return "`" + s.Default.Value + "`"
	}
	var vs []string
	for _, c := range s.Default.Content {
		vs = append(vs, c.Value)
	}
	return "`[" + strings.Join(vs, ", ") + "]`"
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return ""
}

// cell makes text fit a table cell: one line, pipes escaped.
func cell(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	return strings.ReplaceAll(s, "|", `\|`)
}

// anchor is the GitHub heading anchor of a heading: lower case, spaces to dashes, other
// punctuation dropped.
func anchor(h string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(h) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteByte('-')
		}
	}
	return b.String()
}
