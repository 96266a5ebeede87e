package webhook_test

// The v1a signatures and keys checked against an Ed25519 implementation that is not Go's:
// OpenSSL's command line. OpenSSL is required, not optional: without it these tests fail.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/pem"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/pkg/webhook"
)

// The DER prefixes of Ed25519 keys (RFC 8410): SubjectPublicKeyInfo and PKCS #8 PrivateKeyInfo,
// each followed by the 32 raw key bytes. Spelled out so that no Go key encoder is involved.
var (
	ed25519SPKIPrefix  = []byte{0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00}
	ed25519PKCS8Prefix = []byte{0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20}
)

// opensslCmd runs openssl with args in dir and returns its combined output and whether it
// exited 0. A missing openssl fails the test.
func opensslCmd(t *testing.T, dir string, args ...string) (string, bool) {
	t.Helper()
	path, err := exec.LookPath("openssl")
	if err != nil {
		t.Fatalf("openssl is required to check v1a signatures with an independent implementation (apt-get install openssl): %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			t.Fatalf("running openssl %s: %v", strings.Join(args, " "), err)
		}
	}
	return string(out), err == nil
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return name
}

// rawKey decodes the base64 after a key's prefix.
func rawKey(t *testing.T, key, prefix string) []byte {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(key, prefix))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// publicKeyPEM is a whpk_ key as the PEM SubjectPublicKeyInfo openssl reads.
func publicKeyPEM(t *testing.T, publicKey string) []byte {
	t.Helper()
	der := append(append([]byte(nil), ed25519SPKIPrefix...), rawKey(t, publicKey, "whpk_")...)
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// opensslVerify asks openssl whether sig (a "v1a,<base64>" entry) signs content under
// publicKey.
func opensslVerify(t *testing.T, publicKey string, content []byte, sig string) bool {
	t.Helper()
	dir := t.TempDir()
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(sig, "v1a,"))
	if err != nil {
		t.Fatalf("signature %q is not base64: %v", sig, err)
	}
	out, ok := opensslCmd(t, dir, "pkeyutl", "-verify", "-rawin", "-pubin",
		"-inkey", writeFile(t, dir, "pub.pem", publicKeyPEM(t, publicKey)),
		"-in", writeFile(t, dir, "content", content),
		"-sigfile", writeFile(t, dir, "sig", raw))
	switch {
	case ok && strings.Contains(out, "Signature Verified Successfully"):
		return true
	case !ok && strings.Contains(out, "Signature Verification Failure"):
		return false
	}
	t.Fatalf("openssl pkeyutl -verify gave an unexpected answer (exit ok %v): %s", ok, out)
	return false
}

// Our v1a signatures, in a rotation header alongside a v1 one, verify with openssl under the
// published public keys; a changed byte of the content or another key makes openssl refuse.
func TestOpenSSLVerifiesV1aSignatures(t *testing.T) {
	t.Parallel()
	oldKey, oldPublic := webhook.NewSigningKey()
	bodies := [][]byte{
		[]byte(vectorBody),
		[]byte(`{"id":"evt_1","type":"survey.session.submitted","data":{"recall":"é, ü, 食"}}`),
		{},
		bytes.Repeat([]byte("0123456789abcdef"), 4096), // 64 KiB
	}
	for i, body := range bodies {
		msgID := "evt_" + strconv.Itoa(i)
		ts := time.Unix(1_800_000_000+int64(i), 0)
		header, err := webhook.Sign(msgID, ts, body, vectorSecret, vectorSigningKey, oldKey)
		if err != nil {
			t.Fatal(err)
		}
		entries := strings.Fields(header)
		if len(entries) != 3 || !strings.HasPrefix(entries[0], "v1,") {
			t.Fatalf("header %q: want a v1 entry and two v1a entries", header)
		}
		content := []byte(msgID + "." + strconv.FormatInt(ts.Unix(), 10) + "." + string(body))
		if !opensslVerify(t, vectorPublicKey, content, entries[1]) {
			t.Errorf("body %d: openssl rejects the signature by the current key", i)
		}
		if !opensslVerify(t, oldPublic, content, entries[2]) {
			t.Errorf("body %d: openssl rejects the signature by the old key", i)
		}
		if opensslVerify(t, oldPublic, content, entries[1]) {
			t.Errorf("body %d: openssl accepts a signature under another key", i)
		}
		tampered := bytes.Clone(content)
		tampered[len(tampered)-1] ^= 1
		if opensslVerify(t, vectorPublicKey, tampered, entries[1]) {
			t.Errorf("body %d: openssl accepts a signature over changed content", i)
		}
	}
}

// A key pair and a signature made by openssl: its keys, serialized as whsk_/whpk_, parse and
// belong together; our Sign makes the same signature as openssl (Ed25519 is deterministic); and
// our Verifier accepts openssl's signature.
func TestOpenSSLKeysAndSignatures(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if out, ok := opensslCmd(t, dir, "genpkey", "-algorithm", "ed25519", "-outform", "DER", "-out", "key.der"); !ok {
		t.Fatalf("openssl genpkey: %s", out)
	}
	if out, ok := opensslCmd(t, dir, "pkey", "-inform", "DER", "-in", "key.der", "-pubout", "-outform", "DER", "-out", "pub.der"); !ok {
		t.Fatalf("openssl pkey -pubout: %s", out)
	}
	privDER, err := os.ReadFile(filepath.Join(dir, "key.der"))
	if err != nil {
		t.Fatal(err)
	}
	pubDER, err := os.ReadFile(filepath.Join(dir, "pub.der"))
	if err != nil {
		t.Fatal(err)
	}
	seed, ok := bytes.CutPrefix(privDER, ed25519PKCS8Prefix)
	if !ok || len(seed) != 32 {
		t.Fatalf("openssl's private key is not the expected PKCS #8 form: %x", privDER)
	}
	public, ok := bytes.CutPrefix(pubDER, ed25519SPKIPrefix)
	if !ok || len(public) != 32 {
		t.Fatalf("openssl's public key is not the expected SPKI form: %x", pubDER)
	}
	signingKey := "whsk_" + base64.StdEncoding.EncodeToString(append(append([]byte(nil), seed...), public...))
	publicKey := "whpk_" + base64.StdEncoding.EncodeToString(public)
	if got, err := webhook.PublicKeyOf(signingKey); err != nil || got != publicKey {
		t.Fatalf("PublicKeyOf(openssl's key) = %q, %v; want openssl's public key %q", got, err, publicKey)
	}

	const msgID, unix = "evt_openssl", 1_800_000_000
	body := []byte(`{"id":"evt_openssl"}`)
	content := []byte(msgID + "." + strconv.Itoa(unix) + "." + string(body))
	if out, ok := opensslCmd(t, dir, "pkeyutl", "-sign", "-rawin", "-inkey", "key.der", "-keyform", "DER",
		"-in", writeFile(t, dir, "content", content), "-out", "sig"); !ok {
		t.Fatalf("openssl pkeyutl -sign: %s", out)
	}
	rawSig, err := os.ReadFile(filepath.Join(dir, "sig"))
	if err != nil {
		t.Fatal(err)
	}
	theirs := "v1a," + base64.StdEncoding.EncodeToString(rawSig)

	ours, err := webhook.Sign(msgID, time.Unix(unix, 0), body, signingKey)
	if err != nil {
		t.Fatal(err)
	}
	if ours != theirs {
		t.Errorf("Sign = %q, openssl = %q", ours, theirs)
	}

	v := newVerifier(t, webhook.VerifierConfig{PublicKeys: []string{publicKey}, NowFunc: fixedClock(unix)})
	h := http.Header{}
	h.Set(webhook.HeaderID, msgID)
	h.Set(webhook.HeaderTimestamp, strconv.Itoa(unix))
	h.Set(webhook.HeaderSignature, theirs)
	if _, err := v.Verify(h, body); err != nil {
		t.Errorf("Verify(openssl's signature): %v", err)
	}
	if _, err := v.Verify(h, []byte(`{"id":"evt_opensslx"}`)); err == nil {
		t.Error("Verify accepted openssl's signature over another body")
	}
}
