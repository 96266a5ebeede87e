package webhook_test

// Independent implementations for the tests: plain crypto/hmac and encoding/json, nothing from
// the package under test and nothing from golang-jwt, so a shared mistake cannot hide.

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash"
	"strings"
	"testing"
)

// refSignature computes a Standard Webhooks v1 signature as the specification describes it.
func refSignature(t testing.TB, secret, msgID string, unix int64, body []byte) string {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		t.Fatalf("decoding secret: %v", err)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(fmt.Sprintf("%s.%d.%s", msgID, unix, body)))
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// refVerifyJWT checks an HS256 JWT by hand (split, base64url-decode, HMAC) and returns its
// decoded header and claims.
func refVerifyJWT(t testing.TB, token string, key []byte) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts, want 3", len(parts))
	}
	decode := func(i int, into *map[string]any) {
		raw, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatalf("part %d is not unpadded base64url: %v", i, err)
		}
		dec := json.NewDecoder(strings.NewReader(string(raw)))
		dec.UseNumber()
		if err := dec.Decode(into); err != nil {
			t.Fatalf("part %d is not a JSON object: %v", i, err)
		}
	}
	decode(0, &header)
	decode(1, &claims)
	if header["alg"] != "HS256" {
		t.Fatalf("alg = %v, want HS256", header["alg"])
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatalf("signature is not unpadded base64url: %v", err)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(parts[0] + "." + parts[1]))
	if !hmac.Equal(sig, mac.Sum(nil)) {
		t.Fatal("token signature does not verify with the key")
	}
	return header, claims
}

// handJWT builds a JWT from raw JSON by hand. alg picks the MAC: "HS256", "HS512", or "none"
// for an unsigned token.
func handJWT(alg, headerJSON, claimsJSON string, key []byte) string {
	enc := base64.RawURLEncoding
	signing := enc.EncodeToString([]byte(headerJSON)) + "." + enc.EncodeToString([]byte(claimsJSON))
	var h func() hash.Hash
	switch alg {
	case "HS256":
		h = sha256.New
	case "HS512":
		h = sha512.New
	default:
		return signing + "."
	}
	mac := hmac.New(h, key)
	mac.Write([]byte(signing))
	return signing + "." + enc.EncodeToString(mac.Sum(nil))
}

// refBodySHA256 is the bodySha256 claim computed independently.
func refBodySHA256(body []byte) string {
	sum := sha256.Sum256(body)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// refV1aSignature computes a Standard Webhooks v1a signature with crypto/ed25519 alone: the
// 64-byte key after "whsk_", over "<msgID>.<unix>.<body>".
func refV1aSignature(t testing.TB, signingKey, msgID string, unix int64, body []byte) string {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(strings.TrimPrefix(signingKey, "whsk_")))
	if err != nil || len(key) != ed25519.PrivateKeySize {
		t.Fatalf("decoding signing key: %d bytes, %v", len(key), err)
	}
	sig := ed25519.Sign(ed25519.PrivateKey(key), []byte(fmt.Sprintf("%s.%d.%s", msgID, unix, body)))
	return "v1a," + base64.StdEncoding.EncodeToString(sig)
}
