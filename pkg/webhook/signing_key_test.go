package webhook_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/dispatch24/dispatch24/pkg/webhook"
)

// A fixed v1a key pair: the key of RFC 8032's first Ed25519 test vector (section 7.1, TEST 1),
// serialized as Standard Webhooks does. vectorV1aSignature signs the specification's message
// (vectorMsgID, vectorTimestamp, vectorBody) with it; it was made with
// `openssl pkeyutl -sign -rawin`, and Ed25519 signatures are deterministic.
const (
	rfc8032Seed        = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
	rfc8032Public      = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
	vectorSigningKey   = "whsk_nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2DXWpgBgrEKt9VL/tPJZAc6DuFy89qmIyWvAhpo9wdRGg=="
	vectorPublicKey    = "whpk_11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
	vectorV1aSignature = "v1a,fldxM4gAKugP6nnt1hdz3sgGfZ6d99nzrMFnZOELIxbzEHoVmAb2ADpkJK7zgPePmPsle0zV9jSeGlHFG2NVAw=="
)

func TestSigningKeyVector(t *testing.T) {
	t.Parallel()
	seed, _ := hex.DecodeString(rfc8032Seed)
	public, _ := hex.DecodeString(rfc8032Public)

	priv, err := webhook.ParseSigningKey(vectorSigningKey)
	if err != nil {
		t.Fatalf("ParseSigningKey: %v", err)
	}
	if !bytes.Equal(priv.Seed(), seed) || !bytes.Equal(priv.Public().(ed25519.PublicKey), public) {
		t.Fatalf("ParseSigningKey = %x, want seed %s and public key %s", []byte(priv), rfc8032Seed, rfc8032Public)
	}
	pub, err := webhook.ParsePublicKey(vectorPublicKey)
	if err != nil || !bytes.Equal(pub, public) {
		t.Fatalf("ParsePublicKey = %x, %v; want %s", []byte(pub), err, rfc8032Public)
	}
	if got, err := webhook.PublicKeyOf(vectorSigningKey); err != nil || got != vectorPublicKey {
		t.Fatalf("PublicKeyOf = %q, %v; want %q", got, err, vectorPublicKey)
	}
	// The serialization itself, spelled out: prefix, then standard base64 of seed || public key.
	if want := "whsk_" + base64.StdEncoding.EncodeToString(append(seed, public...)); vectorSigningKey != want {
		t.Fatalf("vectorSigningKey = %q, want %q", vectorSigningKey, want)
	}
	if want := "whpk_" + base64.StdEncoding.EncodeToString(public); vectorPublicKey != want {
		t.Fatalf("vectorPublicKey = %q, want %q", vectorPublicKey, want)
	}
}

func TestNewSigningKey(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 50 {
		sk, pk := webhook.NewSigningKey()
		rawSK, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(sk, "whsk_"))
		if !strings.HasPrefix(sk, "whsk_") || err != nil || len(rawSK) != ed25519.PrivateKeySize {
			t.Fatalf("secret key: prefix %v, %d bytes, err %v", strings.HasPrefix(sk, "whsk_"), len(rawSK), err)
		}
		rawPK, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(pk, "whpk_"))
		if !strings.HasPrefix(pk, "whpk_") || err != nil || len(rawPK) != ed25519.PublicKeySize {
			t.Fatalf("public key %q: %d bytes, err %v", pk, len(rawPK), err)
		}
		// Independently of the package: the pair is crypto/ed25519's layout of one key.
		if want := ed25519.NewKeyFromSeed(rawSK[:32]); !bytes.Equal(want, rawSK) || !bytes.Equal(rawSK[32:], rawPK) {
			t.Fatal("NewSigningKey's keys are not one Ed25519 key pair")
		}
		if got, err := webhook.PublicKeyOf(sk); err != nil || got != pk {
			t.Fatalf("PublicKeyOf(secret) = %q, %v; want %q", got, err, pk)
		}
		if seen[sk] {
			t.Fatal("NewSigningKey repeated itself")
		}
		seen[sk] = true
	}
}

func TestParseKeysReject(t *testing.T) {
	t.Parallel()
	seed, _ := hex.DecodeString(rfc8032Seed)
	public, _ := hex.DecodeString(rfc8032Public)
	pair := append(append([]byte(nil), seed...), public...)
	b64 := base64.StdEncoding.EncodeToString
	otherPublic := make([]byte, 32)
	otherPublic[0] = 1
	skBody := strings.TrimPrefix(vectorSigningKey, "whsk_")
	pkBody := strings.TrimPrefix(vectorPublicKey, "whpk_")
	// flipLastBits changes the unused low bits of the last base64 character before the
	// padding: lenient decoders accept it, a canonical key does not.
	flipLastBits := func(s string) string {
		i := strings.IndexByte(s, '=') - 1
		const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
		return s[:i] + string(alphabet[strings.IndexByte(alphabet, s[i])+1]) + s[i+1:]
	}

	tests := []struct {
		name    string
		secret  bool // ParseSigningKey, else ParsePublicKey
		key     string
		wantMsg string // a word the error must contain
	}{
		{"empty", true, "", "empty"},
		{"prefix only", true, "whsk_", "empty"},
		{"no prefix", true, skBody, "starts with whsk_"},
		{"a public key", true, vectorPublicKey, "whpk_ public key"},
		{"a v1 secret", true, vectorSecret, "whsec_"},
		{"seed only", true, "whsk_" + b64(seed), "want 88"},
		{"63 bytes", true, "whsk_" + b64(pair[:63]), "want 88"},
		{"65 bytes", true, "whsk_" + b64(append(pair, 0)), "65 bytes, want 64"},
		{"public half of another key", true, "whsk_" + b64(append(append([]byte(nil), seed...), otherPublic...)), "does not belong"},
		{"url-safe alphabet", true, "whsk_" + base64.URLEncoding.EncodeToString(pair), "base64"},
		{"no padding", true, "whsk_" + base64.RawStdEncoding.EncodeToString(pair) + "AA", "66 bytes, want 64"},
		{"non-canonical last character", true, "whsk_" + flipLastBits(skBody), "canonical"},
		{"line break inside", true, "whsk_" + skBody[:40] + "\n" + skBody[41:], "base64"},
		{"space inside", true, "whsk_" + skBody[:40] + " " + skBody[41:], "base64"},
		{"prefix in capitals", true, "WHSK_" + skBody, "starts with whsk_"},

		{"empty public key", false, "", "empty"},
		{"prefix only, public", false, "whpk_", "empty"},
		{"no prefix, public", false, pkBody, "starts with whpk_"},
		{"a signing key", false, vectorSigningKey, "whsk_ secret signing key"},
		{"a v1 secret, public", false, vectorSecret, "whsec_"},
		{"31 bytes", false, "whpk_" + b64(public[:31]), "31 bytes, want 32"},
		{"33 bytes", false, "whpk_" + b64(append(append([]byte(nil), public...), 0)), "33 bytes, want 32"},
		{"64 bytes", false, "whpk_" + b64(pair), "want 44"},
		{"not base64", false, "whpk_" + strings.Repeat("!", 44), "base64"},
		{"non-canonical last character, public", false, "whpk_" + flipLastBits(pkBody), "canonical"},
		{"padding in the middle", false, "whpk_" + pkBody[:20] + "=" + pkBody[21:], "base64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var err error
			if tt.secret {
				var k ed25519.PrivateKey
				k, err = webhook.ParseSigningKey(tt.key)
				if err == nil {
					t.Fatalf("ParseSigningKey accepted it: %x", []byte(k))
				}
				if _, perr := webhook.PublicKeyOf(tt.key); !errors.Is(perr, webhook.ErrInvalidKey) {
					t.Errorf("PublicKeyOf: err = %v, want ErrInvalidKey", perr)
				}
			} else {
				var k ed25519.PublicKey
				k, err = webhook.ParsePublicKey(tt.key)
				if err == nil {
					t.Fatalf("ParsePublicKey accepted it: %x", []byte(k))
				}
			}
			if !errors.Is(err, webhook.ErrInvalidKey) {
				t.Fatalf("err = %v, want ErrInvalidKey", err)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("err = %q, want it to say %q", err, tt.wantMsg)
			}
			if body := tt.key[min(len(tt.key), 5):]; len(body) >= 8 && strings.Contains(err.Error(), body[:8]) {
				t.Errorf("err %q repeats the key", err)
			}
		})
	}
}

func TestParseKeysAcceptSurroundingSpace(t *testing.T) {
	t.Parallel()
	if _, err := webhook.ParseSigningKey(vectorSigningKey + "\n"); err != nil {
		t.Errorf("ParseSigningKey with a final newline: %v", err)
	}
	if _, err := webhook.ParsePublicKey("  " + vectorPublicKey + "\r\n"); err != nil {
		t.Errorf("ParsePublicKey with surrounding space: %v", err)
	}
}
