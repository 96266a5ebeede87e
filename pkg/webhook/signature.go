package webhook

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"hash"
	"strconv"
	"strings"
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
	// HeaderSignature carries one signature per signing secret or key, space-separated:
	// "v1,<base64 HMAC-SHA256>" for a whsec_ secret, "v1a,<base64 Ed25519>" for a whsk_ key.
	HeaderSignature = "webhook-signature"
)

const (
	// signaturePrefix starts a symmetric (HMAC-SHA256) Standard Webhooks signature.
	signaturePrefix = "v1,"
	// encodedMACLen is the length of a standard base64 HMAC-SHA256.
	encodedMACLen = 44
	// asymmetricPrefix starts an asymmetric (Ed25519) Standard Webhooks signature.
	asymmetricPrefix = "v1a,"
	// encodedEd25519Len is the length of a standard base64 Ed25519 signature.
	encodedEd25519Len = 88
	// maxPooledContent bounds the signed-content buffer a pooled macer keeps for v1a, so one huge
	// body does not pin its size in the pool.
	maxPooledContent = 1 << 20
)

// Sign returns the webhook-signature header value of one attempt: one signature per secret, in
// the order given, separated by spaces. The prefix of each secret picks its scheme, as the
// Standard Webhooks specification intends:
//
//   - a whsec_ secret (the prefix may be omitted) gives "v1,<signature>", the standard base64
//     HMAC-SHA256 of "<msgID>.<unix seconds>.<body>" keyed with the decoded secret;
//   - a whsk_ signing key gives "v1a,<signature>", the standard base64 Ed25519 signature of the
//     same content.
//
// The error wraps ErrInvalidSecret or ErrInvalidKey and never repeats a secret.
func Sign(msgID string, timestamp time.Time, body []byte, secrets ...string) (string, error) {
	if len(secrets) == 0 {
		return "", fmt.Errorf("%w: no secret to sign with", ErrInvalidSecret)
	}
	b, err := appendSignatures(nil, newMACer(), nil, secrets, msgID, timestamp.Unix(), body)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// appendSignatures appends the webhook-signature value for secrets to dst. m computes the v1
// HMACs; ed, if not nil, keeps what v1a signing reuses across calls.
func appendSignatures(dst []byte, m *macer, ed *ed25519Signer, secrets []string, msgID string, unix int64, body []byte) ([]byte, error) {
	var num [20]byte
	ts := strconv.AppendInt(num[:0], unix, 10)
	for i, s := range secrets {
		if strings.HasPrefix(s, SigningKeyPrefix) {
			if i > 0 {
				dst = append(dst, ' ')
			}
			var err error
			if dst, err = ed.appendSignature(dst, s, msgID, ts, body); err != nil {
				return dst, err
			}
			continue
		}
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

// ed25519Signer is what the Client reuses across v1a signatures: keys kept parsed and buffers
// for the signed content. A nil *ed25519Signer parses every key and allocates every buffer.
type ed25519Signer struct {
	keys     signingKeyCache
	contents contentPool
}

// appendSignature appends "v1a,<signature>" of "<msgID>.<ts>.<body>" under the whsk_ key to dst.
func (ed *ed25519Signer) appendSignature(dst []byte, key, msgID string, ts, body []byte) ([]byte, error) {
	var keys *signingKeyCache
	var buf *[]byte
	if ed != nil {
		keys = &ed.keys
		buf = ed.contents.get()
		defer ed.contents.put(buf)
	} else {
		buf = new([]byte)
	}
	priv, cached, err := keys.get(key)
	if err != nil {
		return dst, err
	}
	*buf = appendSignedContent((*buf)[:0], msgID, ts, body)
	sig := ed25519.Sign(priv, *buf)
	if !cached {
		clear(priv)
	}
	dst = append(dst, asymmetricPrefix...)
	return base64.StdEncoding.AppendEncode(dst, sig), nil
}

// appendSignedContent appends "<msgID>.<ts>.<body>" to dst. Ed25519, unlike HMAC, needs the whole
// content at once: it hashes it twice.
func appendSignedContent(dst []byte, msgID string, ts, body []byte) []byte {
	dst = append(dst, msgID...)
	dst = append(dst, '.')
	dst = append(dst, ts...)
	dst = append(dst, '.')
	return append(dst, body...)
}

// contentPool reuses signed-content buffers. The zero value is ready to use.
type contentPool struct{ p sync.Pool }

func (p *contentPool) get() *[]byte {
	if b, ok := p.p.Get().(*[]byte); ok {
		return b
	}
	return new([]byte)
}

// put returns b to the pool unless it grew past maxPooledContent, so that one huge body does not
// pin its size in the pool.
func (p *contentPool) put(b *[]byte) {
	if cap(*b) <= maxPooledContent {
		p.p.Put(b)
	}
}

// maxCachedSigningKeys bounds a signingKeyCache: past it the cache starts again empty.
const maxCachedSigningKeys = 4096

// signingKeyCache keeps whsk_ keys parsed for the Client, which signs with the same few keys on
// every attempt. Parsing checks the key's public half against its seed, a scalar multiplication,
// and crypto/ed25519 keeps its own expansion of a key only while the same key slice is reused:
// with the cache and pooled buffers, two v1a signatures of a 1 KiB attempt take 0 allocations
// instead of 22 and about 2.5 times less time (BenchmarkSignAttemptV1a, parse against cached).
type signingKeyCache struct {
	mu   sync.RWMutex
	keys map[string]ed25519.PrivateKey
	max  int // default maxCachedSigningKeys
}

// get returns the parsed key and whether it belongs to the cache (and must not be cleared). A nil
// cache parses every time.
func (c *signingKeyCache) get(key string) (ed25519.PrivateKey, bool, error) {
	if c == nil {
		priv, err := ParseSigningKey(key)
		return priv, false, err
	}
	c.mu.RLock()
	priv, ok := c.keys[key]
	c.mu.RUnlock()
	if ok {
		return priv, true, nil
	}
	priv, err := ParseSigningKey(key)
	if err != nil {
		return nil, false, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	limit := c.max
	if limit == 0 {
		limit = maxCachedSigningKeys
	}
	if len(c.keys) >= limit || c.keys == nil {
		// Retired keys leave this way too; forgetting them costs one parse each.
		c.keys = make(map[string]ed25519.PrivateKey)
	}
	c.keys[key] = priv
	return priv, true, nil
}

// macer computes the Standard Webhooks HMAC-SHA256 of "<msgID>.<ts>.<body>" with
// crypto/hmac. (A hand-written HMAC over one reusable SHA-256 state saved ~3 µs an attempt,
// +0.1% of the pipeline's CPU, sd 6%, in bench/pipeline's whole-pipeline A/B, so it went:
// issue 12.) buf holds the signed prefix, so the body is streamed, never copied.
//
// A macer keeps the HMACs it keyed for its last two keys (an endpoint's secret, or two during
// a rotation) and resets one while its key comes back: keying a new HMAC hashes both pads
// and allocates two SHA-256 states, 1,152 bytes an attempt (BenchmarkSignAttempt).
type macer struct {
	buf   []byte
	keyed [2]keyedMAC
	next  int // the slot a new key replaces
}

// keyedMAC is an HMAC-SHA256 and the key it was made with.
type keyedMAC struct {
	key []byte
	h   hash.Hash // nil while the slot is empty
}

func newMACer() *macer { return &macer{} }

// hmacFor returns an HMAC-SHA256 under key, reset.
func (m *macer) hmacFor(key []byte) hash.Hash {
	for i := range m.keyed {
		if k := &m.keyed[i]; k.h != nil && bytes.Equal(k.key, key) {
			k.h.Reset()
			return k.h
		}
	}
	k := &m.keyed[m.next]
	m.next = (m.next + 1) % len(m.keyed)
	k.h = hmac.New(sha256.New, key)
	k.key = append(k.key[:0], key...)
	return k.h
}

// sum returns HMAC-SHA256(key, msgID "." ts "." body).
func (m *macer) sum(key []byte, msgID string, ts []byte, body []byte) [sha256.Size]byte {
	h := m.hmacFor(key)
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
