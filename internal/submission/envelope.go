package submission

import (
	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/pkg/events"
)

// submissionEnvelope returns a submission's event envelope: exactly the bytes ev.Marshal
// returns with Data set to what appendData appends (the stored submission, compact JSON with
// HTML escaped, as appendStoredSubmission writes it), in one buffer of about size bytes. It
// also returns head, the envelope without its data (what the events table stores of the event:
// store.Event.DataSubmissionID), and data, the stored submission as a slice of the envelope's
// bytes, so a submission's ~10 KB are built and held once for the store and the publish. ev.Data
// is set to data. TestMarshalEnvelope holds the encodings equal.
//
// The compaction it leaves to the stored submission (appendCompactHTML, and none at all for a
// recall that is compact already) earns its place (issue 12's rule: more than 5% of a whole
// pipeline's CPU): with ev.Marshal instead, the intake pipeline (HTTP, recall check, group
// commit, relay, NATS) spent 18% more CPU per submission, 431 against 365 µs, and took 2,601
// against 2,826 submissions/s (means of 9 alternating runs each, 2026-12-01, quiet 2-core
// machine, 10 KB recalls), measured by
//
//	go run ./bench/intake -store postgres -duration 10s
func submissionEnvelope(ev *events.Event, size int, appendData func([]byte) []byte) (envelope, head, data []byte, err error) {
	ev.Data = nil
	if head, err = ev.Marshal(); err != nil { // data is the envelope's last field, omitted when empty
		return nil, nil, nil, err
	}
	buf := store.AppendEnvelopeOpen(make([]byte, 0, len(head)+len(`,"data":`)+size+1), head)
	start := len(buf)
	buf = appendData(buf)
	data = buf[start:len(buf):len(buf)] // capped: appending to it can never write over the envelope's '}'
	ev.Data = data
	return append(buf, '}'), head, data, nil
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
