package submission

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/dispatch24/dispatch24/internal/httpapi"
)

// MaxRecallBytes is the largest recall a submission may carry (CONTRACT section 5).
const MaxRecallBytes = 1 << 20

// maxSessionIDLen bounds a client-chosen session id, which is stored and indexed.
const maxSessionIDLen = 128

// maxFieldErrors caps the bad fields listed in one validation problem.
const maxFieldErrors = 50

// maxDepth bounds nesting, so a hostile body cannot exhaust the stack.
const maxDepth = 512

// Recall is a validated recall. Raw holds the bytes exactly as submitted: fields this service
// does not know are kept as they are.
type Recall struct {
	StartTime time.Time
	EndTime   time.Time
	// SessionID is the recall's optional sessionId ("" when absent).
	SessionID string
	// Meals is the number of meals.
	Meals int
	Raw   []byte
	// Compact reports that Raw is already as encoding/json writes a json.RawMessage: no
	// whitespace outside strings, and no <, >, & or U+2028/U+2029 in them (as a recall from
	// JSON.stringify or Go's encoder usually is). storedSubmission then copies it instead of
	// compacting it. False only means it may not be.
	Compact bool
}

// ParseRecall checks a submission body against CONTRACT section 5 in one pass: a JSON object
// with startTime and endTime (RFC 3339, start ≤ end), an optional sessionId, meals of
// {"name", "time"?, "foods": [object…], "customData"?}, and an optional customData object. It
// returns a 400 *httpapi.Problem: malformed_json for input that is not JSON, validation_failed
// listing every bad field otherwise. Keys match exactly, as a receiver's decoder would see
// them; a known key given twice is refused rather than guessed. Anywhere in the recall, a
// string that is not valid UTF-8 or holds NUL (\u0000) and a number no float64 can hold
// (1e309) are bad fields too, as httpapi.CheckJSONText names them: receivers and the stores
// cannot take them.
//
// It is hand-written because it earns its place (issue 12's rule: more than 5% of the whole
// pipeline's CPU): with encoding/json (Unmarshal into typed meals with foods as RawMessage)
// instead, the API and dispatcher processes spent 10.5% more CPU per submission (+1.11 s per
// 10,000 submissions on 10.57 s; sd of the paired differences 0.96 s, 7 alternating pairs,
// 2026-11-30, 10 KB recalls, one endpoint), measured with the real binaries' /proc CPU time
// by
//
//	go run ./bench/pipeline -mode backlog -api process -dispatcher process -events 10000 -bare=false \
//	    -api-bin <cmd/api built with one parser> -dispatcher-bin <cmd/dispatcher built alike>
//
// FuzzParseRecall pins it to encoding/json.
func ParseRecall(body []byte) (*Recall, error) {
	if !utf8.Valid(body) {
		// Rare: name the bad strings if the body is JSON otherwise.
		if err := httpapi.CheckJSONText(body); err != nil {
			return nil, err
		}
		return nil, malformed()
	}
	p := parser{data: body}
	rec := &Recall{Raw: body}
	p.skipSpace()
	if p.peek() != '{' {
		if err := p.value(0); err != nil || !p.atEnd() {
			return nil, malformed()
		}
		return nil, httpapi.Validation(httpapi.FieldError{Field: "(body)", Message: "must be a JSON object"})
	}
	if err := p.recall(rec); err != nil {
		return nil, malformed()
	}
	if !p.atEnd() {
		return nil, malformed()
	}
	if p.suspect {
		// Only a body with \u0000 or a huge exponent comes here, to have the bad fields named.
		var tp *httpapi.Problem
		if err := httpapi.CheckJSONText(body); errors.As(err, &tp) && len(tp.Errors) > 0 {
			for _, fe := range tp.Errors {
				if len(p.errs) < maxFieldErrors {
					p.errs = append(p.errs, fe)
				}
			}
		}
	}
	if len(p.errs) > 0 {
		return nil, httpapi.Validation(p.errs...)
	}
	rec.Compact = !p.loose
	return rec, nil
}

func malformed() *httpapi.Problem {
	return httpapi.BadRequest("malformed_json", "the body is not valid JSON")
}

// errSyntax reports malformed JSON; where it is found does not matter to the caller.
var errSyntax = errors.New("malformed JSON")

// parser validates JSON syntax and the recall's shape in a single pass over the bytes. Syntax
// errors stop it; shape errors are collected in errs.
type parser struct {
	data []byte
	pos  int
	errs []httpapi.FieldError
	// suspect is set by a \u0000 escape or a number that may overflow a float64: the body is
	// then checked by httpapi.CheckJSONText, which names the fields.
	suspect bool
	// loose is set by whitespace between tokens and by a byte in a string that encoding/json
	// would escape when compacting (<, >, &, or the lead byte of U+2028/U+2029): the body is
	// then not known to be compact (Recall.Compact).
	loose bool
}

// field locates a bad field without building its name unless it is reported: meal and food
// are indexes (-1 when not inside one), key the member's name ("" for a meal itself).
type field struct {
	meal, food int
	key        string
}

func top(key string) field { return field{meal: -1, food: -1, key: key} }

func (f field) String() string {
	if f.meal < 0 {
		return f.key
	}
	s := "meals[" + strconv.Itoa(f.meal) + "]"
	if f.key != "" {
		s += "." + f.key
	}
	if f.food >= 0 {
		s += "[" + strconv.Itoa(f.food) + "]"
	}
	return s
}

func (p *parser) fail(f field, msg string) {
	if len(p.errs) < maxFieldErrors {
		p.errs = append(p.errs, httpapi.FieldError{Field: f.String(), Message: msg})
	}
}

func (p *parser) skipSpace() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
			p.loose = true
		default:
			return
		}
	}
}

func (p *parser) atEnd() bool {
	p.skipSpace()
	return p.pos == len(p.data)
}

// peek returns the next byte, 0 at the end.
func (p *parser) peek() byte {
	if p.pos < len(p.data) {
		return p.data[p.pos]
	}
	return 0
}

// members walks the object starting at p.pos, calling fn for each member with the key
// (decoded; valid only during the call) and p.pos at the member's value; fn must consume the
// value.
func (p *parser) members(depth int, fn func(key []byte) error) error {
	if depth > maxDepth {
		return errSyntax
	}
	p.pos++ // '{'
	p.skipSpace()
	if p.peek() == '}' {
		p.pos++
		return nil
	}
	for {
		p.skipSpace()
		key, err := p.key()
		if err != nil {
			return err
		}
		p.skipSpace()
		if p.peek() != ':' {
			return errSyntax
		}
		p.pos++
		p.skipSpace()
		if err := fn(key); err != nil {
			return err
		}
		p.skipSpace()
		switch p.peek() {
		case ',':
			p.pos++
		case '}':
			p.pos++
			return nil
		default:
			return errSyntax
		}
	}
}

// elements walks the array starting at p.pos, calling fn with each element's index and p.pos
// at the element; fn must consume it.
func (p *parser) elements(depth int, fn func(i int) error) error {
	if depth > maxDepth {
		return errSyntax
	}
	p.pos++ // '['
	p.skipSpace()
	if p.peek() == ']' {
		p.pos++
		return nil
	}
	for i := 0; ; i++ {
		p.skipSpace()
		if err := fn(i); err != nil {
			return err
		}
		p.skipSpace()
		switch p.peek() {
		case ',':
			p.pos++
		case ']':
			p.pos++
			return nil
		default:
			return errSyntax
		}
	}
}

// key reads an object key (or any string). Strings without escapes are the input's own
// bytes; escaped ones are decoded as a receiver would.
func (p *parser) key() ([]byte, error) {
	start := p.pos
	escaped, err := p.str()
	if err != nil {
		return nil, err
	}
	raw := p.data[start:p.pos]
	if !escaped {
		return raw[1 : len(raw)-1], nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, errSyntax
	}
	return []byte(s), nil
}

// str consumes a string literal, reporting whether it contains escapes. The input is known to
// be valid UTF-8, so only control characters and escapes need checking.
func (p *parser) str() (escaped bool, err error) {
	if p.peek() != '"' {
		return false, errSyntax
	}
	p.pos++
	for p.pos < len(p.data) {
		// Most of a recall is plain string bytes: skip their run in one tight loop, on locals
		// the compiler keeps in registers.
		data, i := p.data, p.pos
		for i < len(data) && strClass[data[i]] == strPlain {
			i++
		}
		if p.pos = i; i >= len(data) {
			break
		}
		switch strClass[data[i]] {
		case strQuote:
			p.pos++
			return escaped, nil
		case strEscape:
			escaped = true
			p.pos++
			if p.pos >= len(p.data) {
				return false, errSyntax
			}
			switch p.data[p.pos] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				p.pos++
			case 'u':
				if p.pos+5 > len(p.data) {
					return false, errSyntax
				}
				for _, h := range p.data[p.pos+1 : p.pos+5] {
					if !isHex(h) {
						return false, errSyntax
					}
				}
				if string(p.data[p.pos+1:p.pos+5]) == "0000" {
					p.suspect = true
				}
				p.pos += 5
			default:
				return false, errSyntax
			}
		case strControl:
			return false, errSyntax
		default: // strHTML
			p.loose = true
			p.pos++
		}
	}
	return false, errSyntax
}

// The classes of a byte inside a JSON string, for parser.str.
const (
	strPlain   = iota
	strQuote   // "
	strEscape  // \
	strControl // below 0x20: not allowed unescaped
	strHTML    // <, >, & and 0xE2 (U+2028 and U+2029 start with it): escaped by encoding/json
)

var strClass = func() (t [256]uint8) {
	for c := range 0x20 {
		t[c] = strControl
	}
	t['"'], t['\\'] = strQuote, strEscape
	t['<'], t['>'], t['&'], t[0xE2] = strHTML, strHTML, strHTML, strHTML
	return t
}()

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// maxExactDigits: a number without an exponent and with no more characters than this fits a
// float64 (whose largest finite value has 309 digits).
const maxExactDigits = 300

// number consumes a number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (p *parser) number() error {
	start := p.pos
	if p.peek() == '-' {
		p.pos++
	}
	switch c := p.peek(); {
	case c == '0':
		p.pos++
	case '1' <= c && c <= '9':
		for p.pos < len(p.data) && isDigit(p.data[p.pos]) {
			p.pos++
		}
	default:
		return errSyntax
	}
	if p.peek() == '.' {
		p.pos++
		if !isDigit(p.peek()) {
			return errSyntax
		}
		for p.pos < len(p.data) && isDigit(p.data[p.pos]) {
			p.pos++
		}
	}
	if c := p.peek(); c == 'e' || c == 'E' {
		p.pos++
		if c := p.peek(); c == '+' || c == '-' {
			p.pos++
		}
		if !isDigit(p.peek()) {
			return errSyntax
		}
		for p.pos < len(p.data) && isDigit(p.data[p.pos]) {
			p.pos++
		}
		p.suspect = p.suspect || overflows(p.data[start:p.pos])
	} else if p.pos-start > maxExactDigits {
		p.suspect = p.suspect || overflows(p.data[start:p.pos])
	}
	return nil
}

// overflows reports whether a JSON number is beyond float64 (underflow to 0 reads fine).
func overflows(num []byte) bool {
	f, err := strconv.ParseFloat(string(num), 64)
	return err != nil && !(errors.Is(err, strconv.ErrRange) && f == 0)
}

func (p *parser) literal(word string) error {
	if len(p.data)-p.pos < len(word) || string(p.data[p.pos:p.pos+len(word)]) != word {
		return errSyntax
	}
	p.pos += len(word)
	return nil
}

// value consumes any JSON value, checking only its syntax.
func (p *parser) value(depth int) error {
	switch c := p.peek(); {
	case c == '{':
		return p.members(depth+1, func([]byte) error { return p.value(depth + 1) })
	case c == '[':
		return p.elements(depth+1, func(int) error { return p.value(depth + 1) })
	case c == '"':
		_, err := p.str()
		return err
	case c == 't':
		return p.literal("true")
	case c == 'f':
		return p.literal("false")
	case c == 'n':
		return p.literal("null")
	case c == '-' || isDigit(c):
		return p.number()
	default:
		return errSyntax
	}
}

// recall walks the top-level object.
func (p *parser) recall(rec *Recall) error {
	var seen struct{ start, end, session, meals, custom bool }
	var startOK, endOK bool
	err := p.members(1, func(key []byte) error {
		switch string(key) {
		case "startTime":
			return p.once(&seen.start, top("startTime"), func() error { return p.timeField(top("startTime"), &rec.StartTime, &startOK) })
		case "endTime":
			return p.once(&seen.end, top("endTime"), func() error { return p.timeField(top("endTime"), &rec.EndTime, &endOK) })
		case "sessionId":
			return p.once(&seen.session, top("sessionId"), func() error { return p.sessionID(rec) })
		case "meals":
			return p.once(&seen.meals, top("meals"), func() error { return p.meals(rec) })
		case "customData":
			return p.once(&seen.custom, top("customData"), func() error { return p.optionalObject(top("customData"), 1) })
		default:
			return p.value(1)
		}
	})
	if err != nil {
		return err
	}
	if !seen.start {
		p.fail(top("startTime"), "is required")
	}
	if !seen.end {
		p.fail(top("endTime"), "is required")
	}
	if !seen.meals {
		p.fail(top("meals"), "is required")
	}
	if startOK && endOK && rec.EndTime.Before(rec.StartTime) {
		p.fail(top("endTime"), "must not be before startTime")
	}
	return nil
}

// once runs fn for the first occurrence of a known key and refuses a second one.
func (p *parser) once(seen *bool, f field, fn func() error) error {
	if *seen {
		p.fail(f, "appears more than once")
		return p.value(1)
	}
	*seen = true
	return fn()
}

// timeField reads a required RFC 3339 time into *out (in UTC), setting *ok when valid.
func (p *parser) timeField(f field, out *time.Time, ok *bool) error {
	if p.peek() != '"' {
		p.fail(f, "must be an RFC 3339 time")
		return p.value(1)
	}
	s, err := p.key()
	if err != nil {
		return err
	}
	t, err := time.Parse(time.RFC3339, string(s))
	if err != nil {
		p.fail(f, "must be an RFC 3339 time")
		return nil
	}
	*out, *ok = t.UTC(), true
	return nil
}

func (p *parser) sessionID(rec *Recall) error {
	f := top("sessionId")
	if p.peek() == 'n' {
		return p.literal("null")
	}
	if p.peek() != '"' {
		p.fail(f, "must be a string")
		return p.value(1)
	}
	b, err := p.key()
	if err != nil {
		return err
	}
	s := string(b)
	switch {
	case s == "":
		p.fail(f, "must not be empty")
	case utf8.RuneCountInString(s) > maxSessionIDLen:
		p.fail(f, fmt.Sprintf("must be at most %d characters", maxSessionIDLen))
	default:
		for _, r := range s {
			if r < 0x20 || r == 0x7f {
				p.fail(f, "must not contain control characters")
				return nil
			}
		}
		rec.SessionID = s
	}
	return nil
}

// optionalObject accepts an object or null.
func (p *parser) optionalObject(f field, depth int) error {
	switch p.peek() {
	case '{':
		return p.value(depth)
	case 'n':
		return p.literal("null")
	}
	p.fail(f, "must be an object")
	return p.value(depth)
}

func (p *parser) meals(rec *Recall) error {
	if p.peek() != '[' {
		p.fail(top("meals"), "must be an array")
		return p.value(1)
	}
	return p.elements(2, func(i int) error {
		rec.Meals++
		return p.meal(i)
	})
}

func (p *parser) meal(i int) error {
	at := func(key string) field { return field{meal: i, food: -1, key: key} }
	if p.peek() != '{' {
		p.fail(at(""), "must be an object")
		return p.value(2)
	}
	var seen struct{ name, time, foods, custom bool }
	err := p.members(3, func(key []byte) error {
		switch string(key) {
		case "name":
			return p.once(&seen.name, at("name"), func() error { return p.mealName(at("name")) })
		case "time":
			return p.once(&seen.time, at("time"), func() error { return p.mealTime(at("time")) })
		case "foods":
			return p.once(&seen.foods, at("foods"), func() error { return p.foods(i) })
		case "customData":
			return p.once(&seen.custom, at("customData"), func() error { return p.optionalObject(at("customData"), 3) })
		default:
			return p.value(3)
		}
	})
	if err != nil {
		return err
	}
	if !seen.name {
		p.fail(at("name"), "is required")
	}
	if !seen.foods {
		p.fail(at("foods"), "is required")
	}
	return nil
}

func (p *parser) mealName(f field) error {
	if p.peek() != '"' {
		p.fail(f, "must be a string")
		return p.value(3)
	}
	start := p.pos
	if _, err := p.str(); err != nil {
		return err
	}
	if p.pos-start == 2 {
		p.fail(f, "must not be empty")
	}
	return nil
}

// mealTime accepts the forms survey apps send: a string ("12:30" or a timestamp) or an object
// ({"hours","minutes"}); null counts as absent.
func (p *parser) mealTime(f field) error {
	switch p.peek() {
	case '"', '{':
		return p.value(3)
	case 'n':
		return p.literal("null")
	}
	p.fail(f, "must be a string or an object")
	return p.value(3)
}

func (p *parser) foods(meal int) error {
	if p.peek() != '[' {
		p.fail(field{meal: meal, food: -1, key: "foods"}, "must be an array")
		return p.value(3)
	}
	return p.elements(4, func(i int) error {
		if p.peek() != '{' {
			p.fail(field{meal: meal, food: i, key: "foods"}, "must be an object")
		}
		return p.value(4)
	})
}
