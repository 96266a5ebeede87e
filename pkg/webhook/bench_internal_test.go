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
		if _, err := appendSignatures(buf[:0], m, secrets, "evt_2KWPBgLlAfxdpx2AI54pPJ85f4W", time.Now().Unix(), body); err != nil {
			b.Fatal(err)
		}
		pool.put(m)
	}
}
