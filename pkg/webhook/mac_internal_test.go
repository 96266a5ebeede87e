package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"testing"
)

// TestMACerKeepsItsKeyApart: a pooled macer reuses a keyed HMAC only for the same key; through
// rotations (two keys in turn), new keys, keys that extend another and the empty key, every sum
// is the HMAC of a freshly keyed crypto/hmac.
func TestMACerKeepsItsKeyApart(t *testing.T) {
	t.Parallel()
	keys := [][]byte{[]byte("key-one"), []byte("key-two"), []byte("key-one"), []byte("key-two"), []byte("key-one-longer"),
		[]byte("key-one-longer"), {}, []byte("key-two"), []byte("key-one"), []byte("key-three"), []byte("key-one")}
	m := newMACer()
	for i, key := range keys {
		body := []byte("body of message " + string(rune('a'+i)))
		got := m.sum(key, "msg_1", []byte("1700000000"), body)
		h := hmac.New(sha256.New, key)
		h.Write([]byte("msg_1.1700000000."))
		h.Write(body)
		if want := h.Sum(nil); !hmac.Equal(got[:], want) {
			t.Fatalf("sum %d (key %q): got %x, want %x", i, key, got, want)
		}
	}
}
