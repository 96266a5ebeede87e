// Package model loads the API's OpenAPI document (package openapi) into libopenapi's model,
// for the tools that read it: the document's tests, the request and response validator of
// package openapitest, and the reference renderer. The API binary itself does not import it.
package model

import (
	"fmt"
	"slices"

	"github.com/dispatch24/dispatch24/internal/openapi"
	"github.com/pb33f/libopenapi"
	"github.com/pb33f/libopenapi/datamodel/high/base"
	v3 "github.com/pb33f/libopenapi/datamodel/high/v3"
	"github.com/pb33f/libopenapi/orderedmap"
)

// Load parses the document and builds its model, resolving every $ref.
func Load() (libopenapi.Document, *v3.Document, error) {
	doc, err := openapi.JSON()
	if err != nil {
		return nil, nil, err
	}
	d, err := libopenapi.NewDocument(doc)
	if err != nil {
		return nil, nil, fmt.Errorf("openapi model: %w", err)
	}
	m, err := d.BuildV3Model()
	if err != nil {
		return nil, nil, fmt.Errorf("openapi model: %w", err)
	}
	return d, &m.Model, nil
}

// ProblemCodes returns the problem codes an error response documents: the enum of its
// application/problem+json schema's code property, found directly or through allOf.
func ProblemCodes(content *orderedmap.Map[string, *v3.MediaType]) []string {
	if content == nil {
		return nil
	}
	mt, ok := content.Get("application/problem+json")
	if !ok || mt.Schema == nil {
		return nil
	}
	var codes []string
	var walk func(s *base.Schema, depth int)
	walk = func(s *base.Schema, depth int) {
		if s == nil || depth > 8 {
			return
		}
		if s.Properties != nil {
			if p, ok := s.Properties.Get("code"); ok {
				if ps := p.Schema(); ps != nil {
					for _, e := range ps.Enum {
						if !slices.Contains(codes, e.Value) {
							codes = append(codes, e.Value)
						}
					}
				}
			}
		}
		for _, sub := range s.AllOf {
			walk(sub.Schema(), depth+1)
		}
	}
	walk(mt.Schema.Schema(), 0)
	return codes
}
