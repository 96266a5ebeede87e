package webhook

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"testing"
)

// The hand-written HMAC must equal crypto/hmac for every key length, including keys longer than
// a block, which whsec_ secrets never are.
func TestMACerMatchesCryptoHMAC(t *testing.T) {
	t.Parallel()
	m := newMACer()
	for _, keyLen := range []int{0, 1, 24, 32, 63, 64, 65, 100, 200} {
		key := bytes.Repeat([]byte{byte(keyLen + 1)}, keyLen)
		checkMAC(t, m, key, "msg_1", "1614265330", []byte(`{"a":1}`))
	}
}

func FuzzMAC(f *testing.F) {
	f.Add([]byte("0123456789abcdef01234567"), "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", []byte(`{"test": 2432232314}`))
	f.Add([]byte{}, "", "", []byte{})
	f.Add(bytes.Repeat([]byte{7}, 129), string(bytes.Repeat([]byte{'i'}, 300)), "0", bytes.Repeat([]byte{0}, 70))
	m := newMACer()
	f.Fuzz(func(t *testing.T, key []byte, msgID, ts string, body []byte) {
		checkMAC(t, m, key, msgID, ts, body)
	})
}

func checkMAC(t *testing.T, m *macer, key []byte, msgID, ts string, body []byte) {
	t.Helper()
	ref := hmac.New(sha256.New, key)
	ref.Write([]byte(msgID + "." + ts + "."))
	ref.Write(body)
	want := ref.Sum(nil)
	got := m.sum(key, msgID, []byte(ts), body)
	if !bytes.Equal(got[:], want) {
		t.Fatalf("key %d bytes, id %q: macer = %x, crypto/hmac = %x", len(key), msgID, got, want)
	}
}
