package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Text that reaches a service must be valid UTF-8 without NUL: PostgreSQL refuses both in
// text (SQLSTATE 22021) and in jsonb, SQLite would store them, and the two stores must behave
// the same. Numbers must fit a float64, as receivers' JSON decoders read them. The router
// checks path and query values and the input headers before any handler runs, and
// UnmarshalJSON checks every string and number of a JSON body, so the refusal happens in one
// place, as a 400 naming the field.

// MsgInvalidText is the message of a field refused for NUL or invalid UTF-8.
const MsgInvalidText = "must be valid UTF-8 text without NUL characters"

// MsgNumberRange is the message of a number no float64 can hold.
const MsgNumberRange = "must be a number a 64-bit float can hold"

// InputHeaders are the request headers handlers read as input (credentials and
// Idempotency-Key); the router refuses NUL and invalid UTF-8 in them.
var InputHeaders = []string{"X-Auth-Token", "Authorization", "Idempotency-Key"}

// ValidText reports whether s is valid UTF-8 without NUL.
func ValidText(s string) bool {
	return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}

// checkRequestText checks the path values named in wildcards, every query parameter and the
// input headers of r.
func checkRequestText(r *http.Request, wildcards []string) error {
	var errs []FieldError
	for _, name := range wildcards {
		if !ValidText(r.PathValue(name)) {
			errs = append(errs, FieldError{Field: name, Message: MsgInvalidText})
		}
	}
	if r.URL.RawQuery != "" {
		// Parsed as handlers see it (r.URL.Query), keys and values.
		for k, vs := range r.URL.Query() {
			if !ValidText(k) {
				errs = append(errs, FieldError{Field: "(query)", Message: "parameter names " + MsgInvalidText})
				continue
			}
			for _, v := range vs {
				if !ValidText(v) {
					errs = append(errs, FieldError{Field: k, Message: MsgInvalidText})
					break
				}
			}
		}
	}
	for _, h := range InputHeaders {
		for _, v := range r.Header.Values(h) {
			if !ValidText(v) {
				errs = append(errs, FieldError{Field: h, Message: MsgInvalidText})
				break
			}
		}
	}
	if len(errs) > 0 {
		return Validation(errs...)
	}
	return nil
}

// wildcardNames lists the wildcards of a ServeMux pattern ("GET /a/{id}/{rest...}" → id,
// rest); {$} is not one.
func wildcardNames(pattern string) []string {
	var names []string
	for {
		i := strings.IndexByte(pattern, '{')
		if i < 0 {
			return names
		}
		j := strings.IndexByte(pattern[i:], '}')
		if j < 0 {
			return names
		}
		name := strings.TrimSuffix(pattern[i+1:i+j], "...")
		if name != "$" && name != "" {
			names = append(names, name)
		}
		pattern = pattern[i+j+1:]
	}
}

// CheckJSONText walks a syntactically valid JSON document and returns a 400 validation
// problem naming each string (key or value) that is not valid UTF-8 or holds NUL, and each
// number a float64 cannot hold (1e309, a 400-digit integer). Fields are named like
// "meals[0].foods[2].name"; the document itself is "(body)". It returns nil for a clean
// document, and a 400 malformed_json for one that is not JSON.
func CheckJSONText(body []byte) error {
	var w jsonWalker
	if err := w.walk(body); err != nil {
		return err
	}
	if len(w.errs) > 0 {
		return Validation(w.errs...)
	}
	return nil
}

// maxTextErrors caps the fields one problem lists.
const maxTextErrors = 50

type jsonFrame struct {
	object bool
	key    string // current member's key (object)
	index  int    // current element's index (array)
	inKey  bool   // the next string is a key
}

type jsonWalker struct {
	stack []jsonFrame
	errs  []FieldError
	done  bool // a whole value has been read
}

// path names the value at the top of the stack, or the container below when n < len(stack).
func (w *jsonWalker) path(n int) string {
	var b strings.Builder
	for i, f := range w.stack[:n] {
		if f.object {
			if i > 0 {
				b.WriteByte('.')
			}
			// A name echoed in a problem must itself be clean: bad bytes show as U+FFFD.
			b.WriteString(strings.ToValidUTF8(strings.ReplaceAll(f.key, "\x00", "\uFFFD"), "\uFFFD"))
		} else {
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(f.index))
			b.WriteByte(']')
		}
	}
	if b.Len() == 0 {
		return "(body)"
	}
	return b.String()
}

func (w *jsonWalker) fail(field, msg string) {
	if len(w.errs) < maxTextErrors {
		w.errs = append(w.errs, FieldError{Field: field, Message: msg})
	}
}

// valueDone moves the enclosing container past the value just read.
func (w *jsonWalker) valueDone() {
	n := len(w.stack)
	if n == 0 {
		w.done = true
		return
	}
	if f := &w.stack[n-1]; f.object {
		f.inKey = true
	} else {
		f.index++
	}
}

func (w *jsonWalker) walk(body []byte) error {
	malformed := BadRequest("malformed_json", "the body is not valid JSON")
	// The decoder turns invalid UTF-8 into U+FFFD, so bad bytes are found in the raw token;
	// a valid body (nearly all) skips that.
	checkBytes := !utf8.Valid(body)
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	for {
		start := dec.InputOffset()
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil || w.done {
			return malformed // not JSON, or data after the value
		}
		bad := checkBytes && !utf8.Valid(body[start:dec.InputOffset()])
		n := len(w.stack)
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{', '[':
				w.stack = append(w.stack, jsonFrame{object: v == '{', inKey: v == '{'})
			default:
				w.stack = w.stack[:n-1]
				w.valueDone()
			}
		case string:
			invalid := bad || strings.IndexByte(v, 0) >= 0
			if n > 0 && w.stack[n-1].object && w.stack[n-1].inKey {
				w.stack[n-1].key, w.stack[n-1].inKey = v, false
				if invalid {
					w.fail(w.path(n-1), "keys "+MsgInvalidText)
				}
				continue
			}
			if invalid {
				w.fail(w.path(n), MsgInvalidText)
			}
			w.valueDone()
		case json.Number:
			// ParseFloat reports underflow (1e-400 → 0) as ErrRange too: that one reads fine.
			if f, err := strconv.ParseFloat(string(v), 64); err != nil && !(errors.Is(err, strconv.ErrRange) && f == 0) {
				w.fail(w.path(n), MsgNumberRange)
			}
			w.valueDone()
		default: // true, false, null
			w.valueDone()
		}
	}
	if !w.done {
		return malformed
	}
	return nil
}
