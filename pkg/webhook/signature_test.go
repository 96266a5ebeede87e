package webhook_test

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/pkg/webhook"
)

// The Standard Webhooks specification's published test vector (libraries/*/ tests of
// github.com/standard-webhooks/standard-webhooks).
const (
	vectorSecret    = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	vectorMsgID     = "msg_p5jXN8AQM9LWM0D4loKWxJek"
	vectorTimestamp = 1614265330
	vectorBody      = `{"test": 2432232314}`
	vectorSignature = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
)

func TestSignVectors(t *testing.T) {
	t.Parallel()
	// A second fixed secret, for rotation: 32 bytes 0x00..0x1f.
	const second = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	tests := []struct {
		name    string
		secrets []string
		msgID   string
		unix    int64
		body    string
		want    string
	}{
		{
			name:    "specification vector",
			secrets: []string{vectorSecret},
			msgID:   vectorMsgID, unix: vectorTimestamp, body: vectorBody,
			want: vectorSignature,
		},
		{
			name:    "specification vector without the whsec_ prefix",
			secrets: []string{strings.TrimPrefix(vectorSecret, "whsec_")},
			msgID:   vectorMsgID, unix: vectorTimestamp, body: vectorBody,
			want: vectorSignature,
		},
		{
			name:    "rotation signs with both secrets, current first",
			secrets: []string{second, vectorSecret},
			msgID:   vectorMsgID, unix: vectorTimestamp, body: vectorBody,
			want: "REF:" + second + " " + vectorSignature,
		},
		{
			name:    "empty body",
			secrets: []string{second},
			msgID:   "evt_1", unix: 0, body: "",
			want: "REF:" + second,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			want := tt.want
			// "REF:<secret>" stands for the independent implementation's signature.
			if rest, ok := strings.CutPrefix(want, "REF:"); ok {
				secret, tail, _ := strings.Cut(rest, " ")
				want = refSignature(t, secret, tt.msgID, tt.unix, []byte(tt.body))
				if tail != "" {
					want += " " + tail
				}
			}
			got, err := webhook.Sign(tt.msgID, time.Unix(tt.unix, 0), []byte(tt.body), tt.secrets...)
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			if got != want {
				t.Errorf("Sign = %q, want %q", got, want)
			}
		})
	}
}

func TestSignMatchesIndependentHMAC(t *testing.T) {
	t.Parallel()
	bodies := []string{"", "{}", `{"id":"evt_1","type":"survey.session.submitted"}`, strings.Repeat("é.", 5000)}
	for i := range 20 {
		secret := webhook.NewSecret()
		body := []byte(bodies[i%len(bodies)])
		msgID := "evt_" + strings.Repeat("x", i*13) // ids longer than the internal scratch buffer too
		unix := int64(1_700_000_000 + i*7919)
		got, err := webhook.Sign(msgID, time.Unix(unix, 0), body, secret)
		if err != nil {
			t.Fatalf("Sign: %v", err)
		}
		if want := refSignature(t, secret, msgID, unix, body); got != want {
			t.Fatalf("case %d: Sign = %q, independent HMAC = %q", i, got, want)
		}
	}
}

func TestSignRejectsBadSecret(t *testing.T) {
	t.Parallel()
	_, err := webhook.Sign("evt_1", time.Unix(1, 0), nil, vectorSecret, "whsec_short")
	if !errors.Is(err, webhook.ErrInvalidSecret) {
		t.Fatalf("Sign with a bad second secret: err = %v, want ErrInvalidSecret", err)
	}
	if strings.Contains(err.Error(), "short") {
		t.Errorf("error %q repeats the secret", err)
	}
	if _, err := webhook.Sign("evt_1", time.Unix(1, 0), nil); !errors.Is(err, webhook.ErrInvalidSecret) {
		t.Fatalf("Sign without secrets: err = %v, want ErrInvalidSecret", err)
	}
}

func TestNewSecret(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 100 {
		s := webhook.NewSecret()
		if !strings.HasPrefix(s, "whsec_") {
			t.Fatalf("secret %q lacks the whsec_ prefix", s)
		}
		raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, "whsec_"))
		if err != nil || len(raw) != 32 {
			t.Fatalf("secret decodes to %d bytes (err %v), want 32", len(raw), err)
		}
		key, err := webhook.DecodeSecret(s)
		if err != nil || string(key) != string(raw) {
			t.Fatalf("DecodeSecret(NewSecret()) = %x, %v", key, err)
		}
		if seen[s] {
			t.Fatal("NewSecret repeated itself")
		}
		seen[s] = true
	}
}

func TestDecodeSecret(t *testing.T) {
	t.Parallel()
	b64 := func(n int) string { return base64.StdEncoding.EncodeToString(make([]byte, n)) }
	tests := []struct {
		name    string
		secret  string
		wantLen int // 0: want ErrInvalidSecret
	}{
		{"specification secret", vectorSecret, 24},
		{"without prefix", strings.TrimPrefix(vectorSecret, "whsec_"), 24},
		{"trailing newline from a file", vectorSecret + "\n", 24},
		{"64 bytes", "whsec_" + b64(64), 64},
		{"empty", "", 0},
		{"prefix only", "whsec_", 0},
		{"23 bytes is too short", "whsec_" + b64(23), 0},
		{"65 bytes is too long", "whsec_" + b64(65), 0},
		{"very long", "whsec_" + b64(4096), 0},
		{"not base64", "whsec_!!!!MfKQ9r8GKYqrTwjUPD8ILPZIo2La", 0},
		{"url-safe alphabet", "whsec_" + strings.Repeat("-_", 16), 0},
		{"missing padding", "whsec_" + strings.TrimRight(b64(32), "="), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			key, err := webhook.DecodeSecret(tt.secret)
			if tt.wantLen == 0 {
				if !errors.Is(err, webhook.ErrInvalidSecret) {
					t.Fatalf("DecodeSecret: err = %v, want ErrInvalidSecret", err)
				}
				return
			}
			if err != nil || len(key) != tt.wantLen {
				t.Fatalf("DecodeSecret = %d bytes, %v; want %d bytes", len(key), err, tt.wantLen)
			}
		})
	}
}

func TestSignV1a(t *testing.T) {
	t.Parallel()
	otherKey, _ := webhook.NewSigningKey()
	tests := []struct {
		name    string
		secrets []string
		want    string // "REF:<whsk_ key>" stands for an independent Ed25519 signature
	}{
		{name: "fixed vector", secrets: []string{vectorSigningKey}, want: vectorV1aSignature},
		{name: "surrounding space in the key", secrets: []string{vectorSigningKey + "\n"}, want: vectorV1aSignature},
		{
			name:    "v1a rotation: both keys, current first",
			secrets: []string{otherKey, vectorSigningKey},
			want:    "REF:" + otherKey + " " + vectorV1aSignature,
		},
		{
			name:    "v1 and v1a together, in the order given",
			secrets: []string{vectorSecret, vectorSigningKey},
			want:    vectorSignature + " " + vectorV1aSignature,
		},
		{
			name:    "v1a and v1 together",
			secrets: []string{vectorSigningKey, vectorSecret},
			want:    vectorV1aSignature + " " + vectorSignature,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			want := tt.want
			if rest, ok := strings.CutPrefix(want, "REF:"); ok {
				key, tail, _ := strings.Cut(rest, " ")
				want = refV1aSignature(t, key, vectorMsgID, vectorTimestamp, []byte(vectorBody)) + " " + tail
			}
			got, err := webhook.Sign(vectorMsgID, time.Unix(vectorTimestamp, 0), []byte(vectorBody), tt.secrets...)
			if err != nil {
				t.Fatalf("Sign: %v", err)
			}
			if got != want {
				t.Errorf("Sign = %q, want %q", got, want)
			}
		})
	}
}

func TestSignV1aMatchesIndependentEd25519(t *testing.T) {
	t.Parallel()
	bodies := []string{"", "{}", `{"id":"evt_1","type":"survey.session.submitted"}`, strings.Repeat("é.", 5000)}
	for i := range 12 {
		key, _ := webhook.NewSigningKey()
		body := []byte(bodies[i%len(bodies)])
		msgID := "evt_" + strings.Repeat("x", i*13)
		unix := int64(1_700_000_000 + i*7919)
		got, err := webhook.Sign(msgID, time.Unix(unix, 0), body, key)
		if err != nil {
			t.Fatalf("Sign: %v", err)
		}
		if want := refV1aSignature(t, key, msgID, unix, body); got != want {
			t.Fatalf("case %d: Sign = %q, independent Ed25519 = %q", i, got, want)
		}
	}
}

func TestSignRejectsBadSigningKey(t *testing.T) {
	t.Parallel()
	bad := "whsk_" + strings.Repeat("A", 86) + "=="
	_, err := webhook.Sign("evt_1", time.Unix(1, 0), nil, vectorSigningKey, bad)
	if !errors.Is(err, webhook.ErrInvalidKey) {
		t.Fatalf("Sign with a bad second key: err = %v, want ErrInvalidKey", err)
	}
	if strings.Contains(err.Error(), "AAAAAAAA") {
		t.Errorf("error %q repeats the key", err)
	}
	// A public key cannot sign; the error says what it is.
	_, err = webhook.Sign("evt_1", time.Unix(1, 0), nil, vectorPublicKey)
	if !errors.Is(err, webhook.ErrInvalidSecret) || !strings.Contains(err.Error(), "v1a") {
		t.Fatalf("Sign with a public key: err = %v, want ErrInvalidSecret naming v1a", err)
	}
}
