package webhook

import (
	"bytes"
	"testing"
	"time"
)

// BenchmarkSignAttempt is the signing Client.Send does per attempt: two secrets (a rotation) over
// a 1 KiB body, with pooled state.
func BenchmarkSignAttempt(b *testing.B) {
	body := bytes.Repeat([]byte("a"), 1024)
	secrets := []string{NewSecret(), NewSecret()}
	var pool macPool
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		var buf [2 * (len(signaturePrefix) + encodedMACLen + 1)]byte
		m := pool.get()
		if _, err := appendSignatures(buf[:0], m, nil, secrets, "evt_2KWPBgLlAfxdpx2AI54pPJ85f4W", time.Now().Unix(), body); err != nil {
			b.Fatal(err)
		}
		pool.put(m)
	}
}

// BenchmarkSignAttemptV1a is BenchmarkSignAttempt for a v1a endpoint: two whsk_ keys, parsed on
// every attempt or kept parsed in a signingKeyCache as the Client does.
func BenchmarkSignAttemptV1a(b *testing.B) {
	body := bytes.Repeat([]byte("a"), 1024)
	k1, _ := NewSigningKey()
	k2, _ := NewSigningKey()
	secrets := []string{k1, k2}
	for _, cached := range []bool{false, true} {
		name := "parse"
		if cached {
			name = "cached"
		}
		b.Run(name, func(b *testing.B) {
			var pool macPool
			var ed *ed25519Signer
			if cached {
				ed = new(ed25519Signer)
			}
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				var buf [2 * (len(asymmetricPrefix) + encodedEd25519Len + 1)]byte
				m := pool.get()
				if _, err := appendSignatures(buf[:0], m, ed, secrets, "evt_2KWPBgLlAfxdpx2AI54pPJ85f4W", time.Now().Unix(), body); err != nil {
					b.Fatal(err)
				}
				pool.put(m)
			}
		})
	}
}
