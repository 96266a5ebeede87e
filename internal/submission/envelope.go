package submission

import (
	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/pkg/events"
)

// marshalEnvelope returns exactly the bytes ev.Marshal returns, and head, the envelope
// without its data (what the events table stores of a submission's event: the data is the
// submission's body, store.Event.DataSubmissionID). ev.Data must be compact JSON with HTML
// escaped, as storedSubmission writes it; it is then copied as it is, where encoding/json
// would run its general scanner over the ~10 KB again. The envelope's other fields go through
// ev.Marshal itself. TestMarshalEnvelope holds the two encodings equal.
//
// The compaction it saves earns its place (issue 12's rule: more than 5% of a whole pipeline's
// CPU): with ev.Marshal instead, the intake pipeline (HTTP, recall check, group commit, relay,
// NATS) spent 18% more CPU per submission, 431 against 365 µs, and took 2,601 against 2,826
// submissions/s (means of 9 alternating runs each, 2026-12-01, quiet 2-core machine, 10 KB
// recalls), measured by
//
//	go run ./bench/intake -store postgres -duration 10s
//
// An earlier whole-pipeline A/B with delivery included (bench/pipeline -mode backlog -api
// process -dispatcher process) put it at 4.2% of the API's and dispatcher's CPU together.
func marshalEnvelope(ev *events.Event) (envelope, head []byte, err error) {
	data := ev.Data
	ev.Data = nil
	head, err = ev.Marshal() // data is the envelope's last field and omitted when empty
	ev.Data = data
	if err != nil || len(data) == 0 {
		return head, head, err
	}
	return store.JoinEnvelope(head, data), head, nil
}

const hexDigits = "0123456789abcdef"

// Bytes that need a look inside and outside string literals; everything else is copied in
// runs.
var (
	inStringSpecial  = byteSet('"', '\\', '<', '>', '&', 0xE2)
	outStringSpecial = byteSet('"', ' ', '\t', '\n', '\r')
)

func byteSet(bs ...byte) *[256]bool {
	var set [256]bool
	for _, b := range bs {
		set[b] = true
	}
	return &set
}

// appendCompactHTML appends valid JSON src to dst as encoding/json's Marshal writes a
// json.RawMessage: insignificant whitespace dropped, and <, >, &, U+2028 and U+2029 escaped
// (they can only occur inside strings).
func appendCompactHTML(dst, src []byte) []byte {
	start, i, n := 0, 0, len(src)
	for i < n {
		// Outside a string: skip to the next quote or whitespace.
		for i < n && !outStringSpecial[src[i]] {
			i++
		}
		if i == n {
			break
		}
		if src[i] != '"' {
			dst = append(dst, src[start:i]...)
			i++
			start = i
			continue
		}
		// Inside a string, up to its closing quote.
		for i++; i < n; i++ {
			for i < n && !inStringSpecial[src[i]] {
				i++
			}
			if i == n {
				break
			}
			c := src[i]
			if c == '"' {
				i++
				break
			}
			switch c {
			case '\\':
				i++ // an escape's second byte is ASCII and never special
			case '<', '>', '&':
				dst = append(dst, src[start:i]...)
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
				start = i + 1
			case 0xE2:
				if i+2 < n && src[i+1] == 0x80 && src[i+2]&^1 == 0xA8 {
					dst = append(dst, src[start:i]...)
					dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[src[i+2]&0xF])
					start = i + 3
					i += 2
				}
			}
		}
	}
	return append(dst, src[start:]...)
}
