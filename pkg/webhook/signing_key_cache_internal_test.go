package webhook

import (
	"bytes"
	"errors"
	"testing"
)

func TestSigningKeyCache(t *testing.T) {
	t.Parallel()
	c := &signingKeyCache{max: 2}
	k1, _ := NewSigningKey()
	k2, _ := NewSigningKey()
	k3, _ := NewSigningKey()

	first, cached, err := c.get(k1)
	if err != nil || !cached {
		t.Fatalf("get = %v, %v", cached, err)
	}
	again, _, _ := c.get(k1)
	if &first[0] != &again[0] {
		t.Error("a second get parsed the key again")
	}
	want, _ := ParseSigningKey(k1)
	if !bytes.Equal(first, want) {
		t.Error("cached key differs from ParseSigningKey's")
	}

	// A bad key is refused every time and never kept.
	for range 2 {
		if _, _, err := c.get("whsk_bad"); !errors.Is(err, ErrInvalidKey) {
			t.Fatalf("get(bad) err = %v", err)
		}
	}
	if len(c.keys) != 1 {
		t.Fatalf("%d keys cached, want 1", len(c.keys))
	}

	// Past its bound the cache starts again.
	_, _, _ = c.get(k2)
	_, _, _ = c.get(k3)
	if _, ok := c.keys[k3]; !ok || len(c.keys) != 1 {
		t.Fatalf("after the bound: %d keys cached, the newest present %v", len(c.keys), ok)
	}

	// A nil cache parses every time and hands out keys the caller may clear.
	if k, cached, err := (*signingKeyCache)(nil).get(k1); err != nil || cached || !bytes.Equal(k, want) {
		t.Fatalf("nil cache get = %v, %v", cached, err)
	}
}
