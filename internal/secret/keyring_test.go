package secret

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

var (
	placeA = Place{Table: "webhooks", Column: "secret", Row: "wh_a"}
	placeB = Place{Table: "webhooks", Column: "secret", Row: "wh_b"}
)

func newKeyring(t *testing.T, current []byte, previous ...[]byte) *Keyring {
	t.Helper()
	k, err := NewKeyring(current, previous...)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSealOpen(t *testing.T) {
	t.Parallel()
	k := newKeyring(t, GenerateKey())
	const plain = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	sealed := k.Seal(placeA, plain)
	if strings.Contains(sealed, plain) || strings.Contains(sealed, plain[6:]) {
		t.Fatalf("sealed value %q shows the secret", sealed)
	}
	if want := "enc:v1:" + k.KeyID() + ":"; !strings.HasPrefix(sealed, want) {
		t.Fatalf("sealed value %q does not start with %q", sealed, want)
	}
	if again := k.Seal(placeA, plain); again == sealed {
		t.Fatal("two seals of one value are equal: the nonce is not random")
	}
	got, err := k.Open(placeA, sealed)
	if err != nil || got != plain {
		t.Fatalf("Open = %q, %v; want the secret", got, err)
	}
	if k.Seal(placeA, "") != "" {
		t.Fatal("an empty secret (none set) was sealed")
	}
}

// A ciphertext opens only at the place it was sealed for: not in another row, column or table.
func TestOpenRefusesMovedValues(t *testing.T) {
	t.Parallel()
	k := newKeyring(t, GenerateKey())
	sealed := k.Seal(placeA, "whsec_a")
	for _, p := range []Place{
		placeB,
		{Table: "webhooks", Column: "url", Row: "wh_a"},
		{Table: "surveys", Column: "secret", Row: "wh_a"},
		{Table: "webhooks", Column: "secret", Row: "wh_a\x00"},
	} {
		if got, err := k.Open(p, sealed); !errors.Is(err, ErrNotOpened) {
			t.Errorf("Open at %v = %q, %v; want ErrNotOpened", p, got, err)
		}
	}
	// One flipped bit of the ciphertext fails too.
	body := sealed[len("enc:v1:")+9:]
	raw, _ := base64.RawURLEncoding.DecodeString(body)
	raw[len(raw)-1] ^= 1
	flipped := sealed[:len(sealed)-len(body)] + base64.RawURLEncoding.EncodeToString(raw)
	if _, err := k.Open(placeA, flipped); !errors.Is(err, ErrNotOpened) {
		t.Errorf("a flipped bit opened: %v", err)
	}
}

func TestRotation(t *testing.T) {
	t.Parallel()
	oldKey, newKey := GenerateKey(), GenerateKey()
	before := newKeyring(t, oldKey)
	sealed := before.Seal(placeA, "whsec_old")

	after := newKeyring(t, newKey, oldKey)
	if got, err := after.Open(placeA, sealed); err != nil || got != "whsec_old" {
		t.Fatalf("the previous key does not open: %q, %v", got, err)
	}
	resealed, changed, err := after.Reseal(placeA, sealed)
	if err != nil || !changed {
		t.Fatalf("Reseal = %v, %v; want a value sealed with the new key", changed, err)
	}
	if !strings.HasPrefix(resealed, "enc:v1:"+KeyID(newKey)+":") {
		t.Fatalf("resealed value %q is not sealed with the new key", resealed)
	}
	if _, changed, err := after.Reseal(placeA, resealed); changed || err != nil {
		t.Fatalf("Reseal of a current value = %v, %v; want unchanged", changed, err)
	}
	// The new key alone opens the resealed value; the old value needs the old key.
	only := newKeyring(t, newKey)
	if got, err := only.Open(placeA, resealed); err != nil || got != "whsec_old" {
		t.Fatalf("resealed value: %q, %v", got, err)
	}
	_, err = only.Open(placeA, sealed)
	var ke *KeyError
	if !errors.As(err, &ke) || !errors.Is(err, ErrUnknownKey) || ke.KeyID != KeyID(oldKey) || ke.Current != KeyID(newKey) {
		t.Fatalf("old value with the new key only: %v; want a KeyError naming both key ids", err)
	}
	for _, s := range []string{"SECRETS_KEY", KeyID(oldKey), KeyID(newKey), "webhooks.secret of wh_a"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not mention %s", err, s)
		}
	}
}

func TestPlainValues(t *testing.T) {
	t.Parallel()
	k := newKeyring(t, GenerateKey())
	if got, err := k.Open(placeA, "whsec_plain"); err != nil || got != "whsec_plain" {
		t.Fatalf("plain value: %q, %v", got, err)
	}
	sealed, changed, err := k.Reseal(placeA, "whsec_plain")
	if err != nil || !changed || !IsSealed(sealed) {
		t.Fatalf("Reseal of a plain value = %q, %v, %v", sealed, changed, err)
	}
	if got, _ := k.Open(placeA, sealed); got != "whsec_plain" {
		t.Fatalf("opened %q", got)
	}
	if _, changed, err := k.Reseal(placeA, ""); changed || err != nil {
		t.Fatalf("Reseal of no secret = %v, %v", changed, err)
	}
	if _, err := k.Open(placeA, "enc:v1:zz:abc"); !errors.Is(err, ErrMalformed) {
		t.Fatalf("malformed value: %v", err)
	}
}

func TestParseKey(t *testing.T) {
	t.Parallel()
	key := GenerateKey()
	for name, s := range map[string]string{
		"std padded":  base64.StdEncoding.EncodeToString(key),
		"std raw":     base64.RawStdEncoding.EncodeToString(key),
		"url padded":  base64.URLEncoding.EncodeToString(key),
		"url raw":     base64.RawURLEncoding.EncodeToString(key),
		"hex":         hex.EncodeToString(key),
		"hex upper":   strings.ToUpper(hex.EncodeToString(key)),
		"spaces":      "  " + EncodeKey(key) + "\n",
		"encode form": EncodeKey(key),
	} {
		got, err := ParseKey(s)
		if err != nil || string(got) != string(key) {
			t.Errorf("%s: ParseKey = %x, %v", name, got, err)
		}
	}
	for name, s := range map[string]string{
		"empty":        "",
		"short":        base64.StdEncoding.EncodeToString(key[:16]),
		"long":         base64.StdEncoding.EncodeToString(append(key, 1)),
		"passphrase":   "correct horse battery staple correct horse",
		"zeros hex":    strings.Repeat("00", 32),
		"zeros base64": base64.StdEncoding.EncodeToString(make([]byte, 32)),
		"pattern":      hex.EncodeToString([]byte(strings.Repeat("abcd", 8))),
		"hex 63":       hex.EncodeToString(key)[:63],
	} {
		got, err := ParseKey(s)
		if err == nil {
			t.Errorf("%s: accepted %x", name, got)
			continue
		}
		if s != "" && strings.Contains(err.Error(), strings.TrimSpace(s)) {
			t.Errorf("%s: error %q quotes the key", name, err)
		}
	}
	keys, err := ParseKeys(" , " + EncodeKey(key) + ",," + hex.EncodeToString(GenerateKey()))
	if err != nil || len(keys) != 2 {
		t.Fatalf("ParseKeys = %d keys, %v", len(keys), err)
	}
	if _, err := ParseKeys(EncodeKey(key) + ",short"); err == nil || !strings.Contains(err.Error(), "key 2") {
		t.Fatalf("ParseKeys with a bad second key: %v", err)
	}
}

// FuzzOpen feeds arbitrary stored values to Open: it returns the plain value, a clear error, or
// (for a value sealed with the key, which a fuzzer cannot forge) the secret — never a panic,
// and never a value that parses but is not what Seal wrote.
func FuzzOpen(f *testing.F) {
	key := make([]byte, KeySize)
	for i := range key {
		key[i] = byte(i * 7)
	}
	k, err := NewKeyring(key)
	if err != nil {
		f.Fatal(err)
	}
	sealed := k.Seal(placeA, "whsec_seed")
	f.Add(sealed)
	f.Add("whsec_plain")
	f.Add("enc:")
	f.Add("enc:v1:")
	f.Add("enc:v1:" + k.KeyID() + ":")
	f.Add("enc:v1:" + k.KeyID() + ":" + strings.Repeat("A", 40))
	f.Add("enc:v1:DEADBEEF:" + sealed[len("enc:v1:")+9:])
	f.Add("enc:v2:" + sealed[len("enc:v1:"):])
	f.Add(sealed + "=")
	f.Add(sealed[:30] + "\n" + sealed[30:]) // the base64 decoder skips newlines
	f.Fuzz(func(t *testing.T, stored string) {
		got, err := k.Open(placeA, stored)
		switch {
		case !IsSealed(stored):
			if err != nil || got != stored {
				t.Fatalf("plain %q: Open = %q, %v", stored, got, err)
			}
		case err == nil:
			// Only what Seal wrote opens (the seed, sealed in whichever process runs the
			// fuzzer), and it opens to what was sealed.
			if got != "whsec_seed" {
				t.Fatalf("forged value %q opened to %q", stored, got)
			}
		case !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnknownKey) && !errors.Is(err, ErrNotOpened):
			t.Fatalf("%q: unclassified error %v", stored, err)
		case strings.Contains(err.Error(), stored[len("enc:"):]) && len(stored) > 16:
			t.Fatalf("error %q quotes the stored value", err)
		}
		if hdr, keyID, ct, err := parse(stored); err == nil {
			if hdr+base64.RawURLEncoding.EncodeToString(ct) != stored || !strings.HasSuffix(hdr, keyID+":") {
				t.Fatalf("parse(%q) = %q, %q, %x: does not round-trip", stored, hdr, keyID, ct)
			}
		}
	})
}

// BenchmarkOpen is the cost a read pays per sealed value: create-user opens the survey's
// jwtSecret per request; the dispatcher opens secrets once per load of a survey's endpoints.
func BenchmarkOpen(b *testing.B) {
	k, err := NewKeyring(GenerateKey())
	if err != nil {
		b.Fatal(err)
	}
	sealed := k.Seal(placeA, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSwMfKQ9r8GKYqrTwjU")
	for b.Loop() {
		if _, err := k.Open(placeA, sealed); err != nil {
			b.Fatal(err)
		}
	}
}
