package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strconv"
	"sync"
	"time"
)

// The Standard Webhooks headers of a delivery.
const (
	// HeaderID carries the event id: the same on every attempt and replay, the receiver's
	// deduplication key.
	HeaderID = "webhook-id"
	// HeaderTimestamp carries the attempt's time in Unix seconds.
	HeaderTimestamp = "webhook-timestamp"
	// HeaderSignature carries one "v1,<base64 HMAC-SHA256>" per signing secret, space-separated.
	HeaderSignature = "webhook-signature"
)

const (
	// signaturePrefix starts a symmetric (HMAC-SHA256) Standard Webhooks signature.
	signaturePrefix = "v1,"
	// encodedMACLen is the length of a standard base64 HMAC-SHA256.
	encodedMACLen = 44
)

// Sign returns the webhook-signature header value of one attempt: "v1,<signature>" for each
// secret, in the order given, separated by spaces. Each signature is the standard base64
// HMAC-SHA256 of "<msgID>.<unix seconds>.<body>" keyed with the decoded secret.
func Sign(msgID string, timestamp time.Time, body []byte, secrets ...string) (string, error) {
	if len(secrets) == 0 {
		return "", fmt.Errorf("%w: no secret to sign with", ErrInvalidSecret)
	}
	b, err := appendSignatures(nil, newMACer(), secrets, msgID, timestamp.Unix(), body)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// appendSignatures appends the webhook-signature value for secrets to dst.
func appendSignatures(dst []byte, m *macer, secrets []string, msgID string, unix int64, body []byte) ([]byte, error) {
	var num [20]byte
	ts := strconv.AppendInt(num[:0], unix, 10)
	for i, s := range secrets {
		var key [maxSecretBytes]byte
		n, err := decodeSecretInto(&key, s)
		if err != nil {
			return dst, err
		}
		if i > 0 {
			dst = append(dst, ' ')
		}
		mac := m.sum(key[:n], msgID, ts, body)
		clear(key[:])
		dst = append(dst, signaturePrefix...)
		dst = base64.StdEncoding.AppendEncode(dst, mac[:])
	}
	return dst, nil
}

// macer computes the Standard Webhooks HMAC-SHA256 of "<msgID>.<ts>.<body>" with
// crypto/hmac. (A hand-written HMAC over one reusable SHA-256 state saved ~3 µs an attempt,
// +0.1% of the pipeline's CPU, sd 6%, in bench/pipeline's whole-pipeline A/B, so it went:
// issue 12.) buf holds the signed prefix, so the body is streamed, never copied.
type macer struct {
	buf []byte
}

func newMACer() *macer { return &macer{} }

// sum returns HMAC-SHA256(key, msgID "." ts "." body).
func (m *macer) sum(key []byte, msgID string, ts []byte, body []byte) [sha256.Size]byte {
	h := hmac.New(sha256.New, key)
	m.buf = append(m.buf[:0], msgID...)
	m.buf = append(m.buf, '.')
	m.buf = append(m.buf, ts...)
	m.buf = append(m.buf, '.')
	_, _ = h.Write(m.buf)
	_, _ = h.Write(body)
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

// macPool reuses macers across attempts. The zero value is ready to use.
type macPool struct{ p sync.Pool }

func (p *macPool) get() *macer {
	if m, ok := p.p.Get().(*macer); ok {
		return m
	}
	return newMACer()
}

func (p *macPool) put(m *macer) { p.p.Put(m) }
