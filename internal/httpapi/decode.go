package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
)

// DefaultBodyLimit bounds JSON request bodies unless a route asks for another limit.
const DefaultBodyLimit = 64 << 10

var errBodyTooLarge = errors.New("request body too large")

// ReadBody reads the whole body up to limit bytes, answering 413 past it, and at once, before
// reading anything, when the declared Content-Length is past it. The buffer grows with the
// bytes that arrive, never with what the client declares.
func ReadBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	tooLarge := func() error {
		return NewProblem(http.StatusRequestEntityTooLarge, "body_too_large",
			fmt.Sprintf("the body is larger than %d bytes", limit))
	}
	if r.ContentLength > limit {
		return nil, tooLarge()
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, tooLarge()
		}
		return nil, BadRequest("bad_body", "could not read the request body")
	}
	return body, nil
}

// RequireContentType answers 415 unless the request's media type is want. An empty body with
// no Content-Type passes, for routes whose body is optional.
func RequireContentType(r *http.Request, want string) error {
	ct := r.Header.Get("Content-Type")
	if ct == "" && r.ContentLength == 0 {
		return nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || mt != want {
		return NewProblem(http.StatusUnsupportedMediaType, "unsupported_media_type",
			fmt.Sprintf("Content-Type must be %s", want))
	}
	return nil
}

// DecodeJSON reads a JSON object of at most limit bytes (DefaultBodyLimit when 0) into dst:
// 415 for another content type, 413 past the limit, 400 for malformed JSON or trailing data.
func DecodeJSON(w http.ResponseWriter, r *http.Request, limit int64, dst any) error {
	if err := RequireContentType(r, "application/json"); err != nil {
		return err
	}
	if limit <= 0 {
		limit = DefaultBodyLimit
	}
	body, err := ReadBody(w, r, limit)
	if err != nil {
		return err
	}
	return UnmarshalJSON(body, dst)
}

// UnmarshalJSON decodes one JSON value into dst, answering 400 with the offending field for
// type errors and malformed input, and for strings that are not valid UTF-8 or hold NUL and
// numbers no float64 can hold anywhere in the document (CheckJSONText), whether or not dst
// keeps them: a json.RawMessage field would pass them on as they are. Where dst is a struct or
// a map, the body must be a JSON object: any other value, null included, is a 400 naming the
// field "(body)".
func UnmarshalJSON(body []byte, dst any) error {
	if len(body) == 0 {
		return BadRequest("malformed_json", "the body must be a JSON object")
	}
	if err := json.Unmarshal(body, dst); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			field := te.Field
			if field == "" {
				field = "(body)"
			}
			return Validation(FieldError{Field: field, Message: "must be " + jsonKind(te.Type.Kind().String())})
		}
		return BadRequest("malformed_json", "the body is not valid JSON")
	}
	// json.Unmarshal takes null into a struct or map as a no-op; every other non-object value
	// already failed above as an UnmarshalTypeError.
	if wantsObject(dst) && bytes.Equal(bytes.Trim(body, " \t\r\n"), []byte("null")) {
		return Validation(FieldError{Field: "(body)", Message: "must be an object"})
	}
	return CheckJSONText(body)
}

// wantsObject reports whether dst points to a struct or a map, which only a JSON object fills.
func wantsObject(dst any) bool {
	t := reflect.TypeOf(dst)
	if t == nil || t.Kind() != reflect.Pointer {
		return false
	}
	k := t.Elem().Kind()
	return k == reflect.Struct || k == reflect.Map
}

func jsonKind(k string) string {
	switch k {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "slice", "array":
		return "an array"
	case "map", "struct", "ptr":
		return "an object"
	default:
		return "a number"
	}
}
