package dispatch

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/dispatch24/dispatch24/pkg/events"
)

// errInvalidEnvelope marks a message whose body is not an event envelope. Redelivering it
// cannot help, so its message is terminated.
var errInvalidEnvelope = errors.New("invalid event envelope")

// envelope holds the fields of an event the engine needs: routing and the JWT claims. The
// recall in data is never decoded.
type envelope struct {
	ID           string `json:"id"`
	Type         string `json:"type"`
	SurveyID     string `json:"surveyId"`
	SessionID    string `json:"sessionId"`
	UserID       string `json:"userId"`
	Username     string `json:"username"`
	SubmissionID string `json:"submissionId"`
}

// decodeEnvelope decodes body, an events.Event as JSON. subject and eventType, from the NATS
// message, fill in and must agree with the envelope's surveyId and type when given; empty
// strings skip that check (a retry read from the store has only the body).
func decodeEnvelope(body []byte, subject, eventType string) (envelope, error) {
	e, err := scanEnvelope(body)
	if err != nil {
		return e, fmt.Errorf("%w: %w", errInvalidEnvelope, err)
	}
	if e.ID == "" {
		return e, fmt.Errorf("%w: no id", errInvalidEnvelope)
	}
	if eventType != "" {
		if e.Type == "" {
			e.Type = eventType
		} else if e.Type != eventType {
			return e, fmt.Errorf("%w: type %q, header says %q", errInvalidEnvelope, e.Type, eventType)
		}
	}
	if e.Type == "" {
		return e, fmt.Errorf("%w: no type", errInvalidEnvelope)
	}
	if subject != "" {
		survey, ok := surveyFromSubject(subject, e.Type)
		switch {
		case !ok:
			return e, fmt.Errorf("%w: subject %q does not end in the type %q", errInvalidEnvelope, subject, e.Type)
		case e.SurveyID == "":
			e.SurveyID = survey
		case e.SurveyID != survey:
			return e, fmt.Errorf("%w: surveyId %q, subject says %q", errInvalidEnvelope, e.SurveyID, survey)
		}
	}
	if e.SurveyID == "" {
		return e, fmt.Errorf("%w: no surveyId", errInvalidEnvelope)
	}
	return e, nil
}

// surveyFromSubject returns the survey of subject "<prefix>.<surveyId>.<type>".
func surveyFromSubject(subject, eventType string) (string, bool) {
	rest, ok := strings.CutPrefix(subject, events.SubjectPrefix+".")
	if !ok {
		return "", false
	}
	survey, ok := strings.CutSuffix(rest, "."+eventType)
	if !ok || survey == "" {
		return "", false
	}
	return survey, true
}

// scanEnvelope reads the envelope's top-level string fields without decoding the rest.
// encoding/json spends about 14 µs a kilobyte validating a recall the engine never reads (the
// submission API validated it before it was stored), on the one goroutine that consumes the
// stream; this scanner reads the fields it needs and skips every other value by its structure
// (strings with their escapes, balanced brackets, bare literals) at a small fraction of that.
// It accepts what encoding/json accepts for the envelope's own fields, and refuses bodies that
// are not one JSON object, with a malformed field or unbalanced brackets; the inside of values
// it skips is checked only for that balance. Keys match exactly (encoding/json would also
// match them case-insensitively; the relay writes them exactly).
//
// It earns its place by issue 12's rule (more than 5% of the whole pipeline's CPU), narrowly:
// with json.Unmarshal into envelope instead, the dispatcher process spent +0.73 s per 10,000
// submissions, 6.9% of the API's and dispatcher's 10.57 s (sd of the paired differences
// 0.78 s, 7 alternating pairs, 2026-11-30, 10 KB recalls, one endpoint; with more endpoints
// per event the share falls), measured with the real binaries' /proc CPU time by
//
//	go run ./bench/pipeline -mode backlog -api process -dispatcher process -events 10000 -bare=false \
//	    -api-bin <cmd/api> -dispatcher-bin <cmd/dispatcher built with one decoder or the other>
//
// FuzzScanEnvelope pins it to encoding/json.
func scanEnvelope(body []byte) (envelope, error) {
	var e envelope
	s := envScanner{b: body}
	s.space()
	if !s.eat('{') {
		return e, errors.New("not a JSON object")
	}
	s.space()
	if !s.eat('}') {
		for {
			s.space()
			key, err := s.key()
			if err != nil {
				return e, fmt.Errorf("key: %w", err)
			}
			s.space()
			if !s.eat(':') {
				return e, fmt.Errorf("no colon after key %q", key)
			}
			s.space()
			if f := e.field(key); f != nil {
				if !s.literal("null") {
					if *f, err = s.string(); err != nil {
						return e, fmt.Errorf("%s: %w", key, err)
					}
				}
			} else if err := s.skip(); err != nil {
				return e, fmt.Errorf("%s: %w", key, err)
			}
			s.space()
			if s.eat(',') {
				continue
			}
			if s.eat('}') {
				break
			}
			return e, fmt.Errorf("want , or } at offset %d", s.i)
		}
	}
	s.space()
	if s.i != len(s.b) {
		return e, fmt.Errorf("data after the object at offset %d", s.i)
	}
	return e, nil
}

// field is where the value of key goes; nil for keys the engine does not read.
func (e *envelope) field(key []byte) *string {
	switch string(key) {
	case "id":
		return &e.ID
	case "type":
		return &e.Type
	case "surveyId":
		return &e.SurveyID
	case "sessionId":
		return &e.SessionID
	case "userId":
		return &e.UserID
	case "username":
		return &e.Username
	case "submissionId":
		return &e.SubmissionID
	}
	return nil
}

// envScanner walks a JSON text; i is the offset of the next unread byte.
type envScanner struct {
	b []byte
	i int
}

func (s *envScanner) space() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *envScanner) eat(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

func (s *envScanner) literal(lit string) bool {
	if len(s.b)-s.i >= len(lit) && string(s.b[s.i:s.i+len(lit)]) == lit {
		s.i += len(lit)
		return true
	}
	return false
}

// stringEnd returns the offset just past the string starting at s.i (its opening quote) and
// whether it holds escapes or bytes that need encoding/json's care (controls, non-ASCII).
func (s *envScanner) stringEnd() (end int, complex bool, err error) {
	if !s.eat('"') {
		return 0, false, fmt.Errorf("want a string at offset %d", s.i)
	}
	for i := s.i; i < len(s.b); i++ {
		switch c := s.b[i]; {
		case c == '"':
			return i + 1, complex, nil
		case c == '\\':
			complex = true
			i++ // the escaped byte cannot end the string
		case c < 0x20 || c >= 0x80:
			complex = true
		}
	}
	return 0, false, errors.New("unterminated string")
}

// key reads a JSON string (an object key, or a value to copy), without a copy unless it
// holds escapes or bytes that need encoding/json's care.
func (s *envScanner) key() ([]byte, error) {
	start := s.i
	end, complex, err := s.stringEnd()
	if err != nil {
		return nil, err
	}
	s.i = end
	if !complex {
		return s.b[start+1 : end-1], nil
	}
	var v string
	if err := json.Unmarshal(s.b[start:end], &v); err != nil {
		return nil, err
	}
	return []byte(v), nil
}

// string reads a JSON string.
func (s *envScanner) string() (string, error) {
	b, err := s.key()
	return string(b), err
}

// skip passes over one value: a string, a literal or number, or an object or array whose
// brackets balance.
func (s *envScanner) skip() error {
	if s.i >= len(s.b) {
		return errors.New("missing value")
	}
	switch s.b[s.i] {
	case '"':
		return s.skipString()
	case '{', '[':
		return s.skipContainer()
	}
	start := s.i
	for s.i < len(s.b) && isBareByte(s.b[s.i]) {
		s.i++
	}
	switch w := string(s.b[start:s.i]); {
	case w == "true" || w == "false" || w == "null":
		return nil
	case w != "" && (w[0] == '-' || w[0] >= '0' && w[0] <= '9'):
		return nil
	}
	return fmt.Errorf("bad value at offset %d", start)
}

// isBareByte reports whether c may appear in a literal or a number.
func isBareByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'E'
}

// structural marks the bytes skipContainer stops at.
var structural = [256]bool{'"': true, '{': true, '}': true, '[': true, ']': true}

// skipString passes over the string starting at s.i; the inside is not checked.
func (s *envScanner) skipString() error {
	for i := s.i + 1; i < len(s.b); i++ {
		switch s.b[i] {
		case '"':
			s.i = i + 1
			return nil
		case '\\':
			i++ // the escaped byte cannot end the string
		}
	}
	return errors.New("unterminated string")
}

func (s *envScanner) skipContainer() error {
	var buf [64]byte
	stack := buf[:0] // closers still expected
	for s.i < len(s.b) {
		for s.i < len(s.b) && !structural[s.b[s.i]] {
			s.i++
		}
		if s.i == len(s.b) {
			break
		}
		switch c := s.b[s.i]; c {
		case '"':
			if err := s.skipString(); err != nil {
				return err
			}
			continue
		case '{':
			stack = append(stack, '}')
		case '[':
			stack = append(stack, ']')
		case '}', ']':
			if len(stack) == 0 || stack[len(stack)-1] != c {
				return fmt.Errorf("unbalanced %q at offset %d", c, s.i)
			}
			stack = stack[:len(stack)-1]
			if len(stack) == 0 {
				s.i++
				return nil
			}
		}
		s.i++
	}
	return errors.New("unterminated object or array")
}
