package webhook_test

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/dispatch24/dispatch24/pkg/webhook"
)

const (
	testJWTSecret = "an opaque shared secret, 32+ characters"
	testAudience  = "https://receiver.example/hook"
	otherSecret   = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
)

// fixedClock returns a NowFunc stuck at unix.
func fixedClock(unix int64) func() time.Time {
	return func() time.Time { return time.Unix(unix, 0) }
}

// vectorHeader is the specification vector's delivery headers.
func vectorHeader() http.Header {
	h := http.Header{}
	h.Set(webhook.HeaderID, vectorMsgID)
	h.Set(webhook.HeaderTimestamp, strconv.Itoa(vectorTimestamp))
	h.Set(webhook.HeaderSignature, vectorSignature)
	return h
}

func newVerifier(t *testing.T, cfg webhook.VerifierConfig) *webhook.Verifier {
	t.Helper()
	if cfg.NowFunc == nil {
		cfg.NowFunc = fixedClock(vectorTimestamp)
	}
	v, err := webhook.NewVerifier(cfg)
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	return v
}

func TestVerifySignature(t *testing.T) {
	t.Parallel()
	body := []byte(vectorBody)
	rotated := func(h http.Header) {
		sig, err := webhook.Sign(vectorMsgID, time.Unix(vectorTimestamp, 0), body, otherSecret, vectorSecret)
		if err != nil {
			t.Fatal(err)
		}
		h.Set(webhook.HeaderSignature, sig)
	}
	tests := []struct {
		name    string
		secrets []string
		edit    func(http.Header)
		body    string
		now     int64
		wantErr error
	}{
		{name: "specification vector", secrets: []string{vectorSecret}},
		{name: "secret without prefix", secrets: []string{strings.TrimPrefix(vectorSecret, "whsec_")}},
		{name: "either listed secret", secrets: []string{otherSecret, vectorSecret}},
		{name: "rotation header, old secret", secrets: []string{vectorSecret}, edit: rotated},
		{name: "rotation header, new secret", secrets: []string{otherSecret}, edit: rotated},
		{name: "wrong secret", secrets: []string{otherSecret}, wantErr: webhook.ErrInvalidSignature},
		{
			name: "valid signature among others (specification multi-sig case)", secrets: []string{vectorSecret},
			edit: func(h http.Header) {
				h.Set(webhook.HeaderSignature, "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= "+vectorSignature+" v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=")
			},
		},
		{
			name: "signature in a second header line", secrets: []string{vectorSecret},
			edit: func(h http.Header) {
				h.Set(webhook.HeaderSignature, "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=")
				h.Add(webhook.HeaderSignature, vectorSignature)
			},
		},
		{name: "tampered body", secrets: []string{vectorSecret}, body: `{"test": 2432232315}`, wantErr: webhook.ErrInvalidSignature},
		{
			name: "tampered id", secrets: []string{vectorSecret}, wantErr: webhook.ErrInvalidSignature,
			edit: func(h http.Header) { h.Set(webhook.HeaderID, vectorMsgID+"x") },
		},
		{
			name: "tampered timestamp", secrets: []string{vectorSecret}, wantErr: webhook.ErrInvalidSignature,
			edit: func(h http.Header) { h.Set(webhook.HeaderTimestamp, strconv.Itoa(vectorTimestamp+1)) },
		},
		{
			name: "timestamp with leading zero", secrets: []string{vectorSecret}, wantErr: webhook.ErrInvalidSignature,
			edit: func(h http.Header) { h.Set(webhook.HeaderTimestamp, "0"+strconv.Itoa(vectorTimestamp)) },
		},
		{
			name: "timestamp with sign", secrets: []string{vectorSecret}, wantErr: webhook.ErrInvalidSignature,
			edit: func(h http.Header) { h.Set(webhook.HeaderTimestamp, "+"+strconv.Itoa(vectorTimestamp)) },
		},
		{
			name: "timestamp not a number", secrets: []string{vectorSecret}, wantErr: webhook.ErrInvalidSignature,
			edit: func(h http.Header) { h.Set(webhook.HeaderTimestamp, "hello") },
		},
		{
			name: "wrong version", secrets: []string{vectorSecret}, wantErr: webhook.ErrInvalidSignature,
			edit: func(h http.Header) {
				h.Set(webhook.HeaderSignature, "v1a,"+strings.TrimPrefix(vectorSignature, "v1,"))
			},
		},
		{
			name: "partial signature", secrets: []string{vectorSecret}, wantErr: webhook.ErrInvalidSignature,
			edit: func(h http.Header) { h.Set(webhook.HeaderSignature, vectorSignature[:8]) },
		},
		{
			name: "empty signature", secrets: []string{vectorSecret}, wantErr: webhook.ErrInvalidSignature,
			edit: func(h http.Header) { h.Set(webhook.HeaderSignature, "v1,") },
		},
		{
			name: "missing id", secrets: []string{vectorSecret}, wantErr: webhook.ErrMissingHeaders,
			edit: func(h http.Header) { h.Del(webhook.HeaderID) },
		},
		{
			name: "missing timestamp", secrets: []string{vectorSecret}, wantErr: webhook.ErrMissingHeaders,
			edit: func(h http.Header) { h.Del(webhook.HeaderTimestamp) },
		},
		{
			name: "missing signature", secrets: []string{vectorSecret}, wantErr: webhook.ErrMissingHeaders,
			edit: func(h http.Header) { h.Del(webhook.HeaderSignature) },
		},
		{name: "5 minutes old is still fine", secrets: []string{vectorSecret}, now: vectorTimestamp + 300},
		{name: "5 minutes ahead is still fine", secrets: []string{vectorSecret}, now: vectorTimestamp - 300},
		{name: "stale", secrets: []string{vectorSecret}, now: vectorTimestamp + 301, wantErr: webhook.ErrTimestampOutOfRange},
		{name: "future", secrets: []string{vectorSecret}, now: vectorTimestamp - 301, wantErr: webhook.ErrTimestampOutOfRange},
		{name: "stale and wrong secret is a bad signature", secrets: []string{otherSecret}, now: vectorTimestamp + 3600, wantErr: webhook.ErrInvalidSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			now := tt.now
			if now == 0 {
				now = vectorTimestamp
			}
			v := newVerifier(t, webhook.VerifierConfig{Secrets: tt.secrets, NowFunc: fixedClock(now)})
			h := vectorHeader()
			if tt.edit != nil {
				tt.edit(h)
			}
			b := body
			if tt.body != "" {
				b = []byte(tt.body)
			}
			got, err := v.Verify(h, b)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Verify: err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if got.ID != h.Get(webhook.HeaderID) || got.Timestamp.Unix() != vectorTimestamp || got.Claims != nil {
				t.Errorf("Verify = %+v", got)
			}
		})
	}
}

// signedDelivery returns headers and body of a delivery signed with vectorSecret at unix,
// carrying token as its JWT (if not empty).
func signedDelivery(t *testing.T, unix int64, body []byte, token string) http.Header {
	t.Helper()
	sig, err := webhook.Sign("evt_1", time.Unix(unix, 0), body, vectorSecret)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	h.Set(webhook.HeaderID, "evt_1")
	h.Set(webhook.HeaderTimestamp, strconv.FormatInt(unix, 10))
	h.Set(webhook.HeaderSignature, sig)
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	return h
}

func TestVerifyToken(t *testing.T) {
	t.Parallel()
	const now = 1_800_000_000
	body := []byte(`{"id":"evt_1","type":"survey.session.submitted","surveyId":"demo-survey"}`)
	key := []byte(testJWTSecret)
	good := func(p webhook.TokenParams) string {
		if p.Issuer == "" {
			p.Issuer = "intake24"
		}
		if p.Audience == "" {
			p.Audience = testAudience
		}
		if p.IssuedAt.IsZero() {
			p.IssuedAt = time.Unix(now, 0)
		}
		p.Type, p.SurveyID, p.Subject = "survey.session.submitted", "demo-survey", "resp-1"
		tok, err := webhook.SignToken(key, p, body)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	claims := func(extra string) string {
		return `{"iss":"intake24","aud":"` + testAudience + `","iat":` + strconv.Itoa(now) + `,"exp":` + strconv.Itoa(now+300) +
			`,"bodySha256":"` + refBodySHA256(body) + `"` + extra + `}`
	}
	hs256 := `{"alg":"HS256","typ":"JWT"}`
	tests := []struct {
		name     string
		token    string
		auth     string // the whole Authorization header, instead of "Bearer <token>"
		wantErr  error
		wantJWT  error // an additional jwt/v5 cause
		wantSubj string
	}{
		{name: "valid", token: good(webhook.TokenParams{}), wantSubj: "resp-1"},
		{name: "hand-made valid token", token: handJWT("HS256", hs256, claims(`,"sub":"hand"`), key), wantSubj: "hand"},
		{name: "lowercase bearer", auth: "bearer " + good(webhook.TokenParams{}), wantSubj: "resp-1"},
		{name: "aud as an array", token: handJWT("HS256", hs256, claims(`,"aud":["other","`+testAudience+`"]`), key), wantSubj: ""},
		{name: "missing", auth: "", wantErr: webhook.ErrMissingHeaders},
		{name: "basic auth", auth: "Basic dXNlcjpwYXNz", wantErr: webhook.ErrMissingHeaders},
		{name: "bearer without token", auth: "Bearer ", wantErr: webhook.ErrMissingHeaders},
		{name: "garbage", token: "not.a.jwt", wantErr: webhook.ErrInvalidToken, wantJWT: jwt.ErrTokenMalformed},
		{name: "alg none", token: handJWT("none", `{"alg":"none","typ":"JWT"}`, claims(""), nil), wantErr: webhook.ErrInvalidToken},
		{name: "alg none with a signature", token: strings.TrimSuffix(handJWT("none", `{"alg":"none"}`, claims(""), nil), ".") + ".c2ln", wantErr: webhook.ErrInvalidToken},
		{name: "HS512 while HS256 is pinned", token: handJWT("HS512", `{"alg":"HS512","typ":"JWT"}`, claims(""), key), wantErr: webhook.ErrInvalidToken},
		{name: "HS512 body labelled HS256", token: handJWT("HS512", hs256, claims(""), key), wantErr: webhook.ErrInvalidToken, wantJWT: jwt.ErrTokenSignatureInvalid},
		{name: "RS256 header", token: handJWT("HS256", `{"alg":"RS256","typ":"JWT"}`, claims(""), key), wantErr: webhook.ErrInvalidToken},
		{name: "wrong key", token: handJWT("HS256", hs256, claims(""), []byte("another secret")), wantErr: webhook.ErrInvalidToken, wantJWT: jwt.ErrTokenSignatureInvalid},
		{name: "wrong audience", token: good(webhook.TokenParams{Audience: "https://attacker.example/hook"}), wantErr: webhook.ErrInvalidToken, wantJWT: jwt.ErrTokenInvalidAudience},
		{name: "wrong issuer", token: good(webhook.TokenParams{Issuer: "someone-else"}), wantErr: webhook.ErrInvalidToken, wantJWT: jwt.ErrTokenInvalidIssuer},
		{name: "expired", token: good(webhook.TokenParams{IssuedAt: time.Unix(now-301, 0)}), wantErr: webhook.ErrInvalidToken, wantJWT: jwt.ErrTokenExpired},
		{name: "no exp", token: handJWT("HS256", hs256, `{"iss":"intake24","aud":"`+testAudience+`","bodySha256":"`+refBodySHA256(body)+`"}`, key), wantErr: webhook.ErrInvalidToken, wantJWT: jwt.ErrTokenRequiredClaimMissing},
		{name: "not yet valid", token: handJWT("HS256", hs256, claims(`,"nbf":`+strconv.Itoa(now+60)), key), wantErr: webhook.ErrInvalidToken, wantJWT: jwt.ErrTokenNotValidYet},
		{name: "another body", token: handJWT("HS256", hs256, claims(`,"bodySha256":"`+refBodySHA256([]byte("{}"))+`"`), key), wantErr: webhook.ErrBodyMismatch},
		{name: "no bodySha256", token: handJWT("HS256", hs256, `{"iss":"intake24","aud":"`+testAudience+`","exp":`+strconv.Itoa(now+300)+`}`, key), wantErr: webhook.ErrBodyMismatch},
	}
	v := newVerifier(t, webhook.VerifierConfig{
		Secrets: []string{vectorSecret}, JWTSecret: testJWTSecret, Audience: testAudience, NowFunc: fixedClock(now),
	})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := signedDelivery(t, now, body, "")
			switch {
			case tt.token != "":
				h.Set("Authorization", "Bearer "+tt.token)
			case tt.auth != "":
				h.Set("Authorization", tt.auth)
			}
			got, err := v.Verify(h, body)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Verify: err = %v, want %v", err, tt.wantErr)
				}
				if tt.wantJWT != nil && !errors.Is(err, tt.wantJWT) {
					t.Fatalf("Verify: err = %v, want it to wrap %v", err, tt.wantJWT)
				}
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if got.Claims == nil || got.Claims.Subject != tt.wantSubj || got.Claims.BodySHA256 != refBodySHA256(body) {
				t.Fatalf("Verify claims = %+v", got.Claims)
			}
		})
	}
}

func TestVerifyTokenIgnoredWithoutJWTSecret(t *testing.T) {
	t.Parallel()
	v := newVerifier(t, webhook.VerifierConfig{Secrets: []string{vectorSecret}})
	h := vectorHeader()
	h.Set("Authorization", "Bearer whatever")
	got, err := v.Verify(h, []byte(vectorBody))
	if err != nil || got.Claims != nil {
		t.Fatalf("Verify = %+v, %v", got, err)
	}
}

func TestNewVerifierConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  webhook.VerifierConfig
		ok   bool
	}{
		{"one secret", webhook.VerifierConfig{Secrets: []string{vectorSecret}}, true},
		{"JWT with audience", webhook.VerifierConfig{Secrets: []string{vectorSecret}, JWTSecret: "k", Audience: testAudience}, true},
		{"no secret", webhook.VerifierConfig{}, false},
		{"bad secret", webhook.VerifierConfig{Secrets: []string{vectorSecret, "whsec_nope"}}, false},
		{"JWT without audience", webhook.VerifierConfig{Secrets: []string{vectorSecret}, JWTSecret: "k"}, false},
		{"negative tolerance", webhook.VerifierConfig{Secrets: []string{vectorSecret}, Tolerance: -time.Second}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := webhook.NewVerifier(tt.cfg)
			if (err == nil) != tt.ok {
				t.Fatalf("NewVerifier: err = %v, want ok = %v", err, tt.ok)
			}
			if err != nil && strings.Contains(err.Error(), "nope") {
				t.Errorf("error %q repeats a secret", err)
			}
		})
	}
}

// v1aHeader is the specification vector's delivery signed with the given secrets and keys.
func v1aHeader(t *testing.T, secrets ...string) http.Header {
	t.Helper()
	sig, err := webhook.Sign(vectorMsgID, time.Unix(vectorTimestamp, 0), []byte(vectorBody), secrets...)
	if err != nil {
		t.Fatal(err)
	}
	h := vectorHeader()
	h.Set(webhook.HeaderSignature, sig)
	return h
}

func TestVerifyV1a(t *testing.T) {
	t.Parallel()
	otherSK, otherPK := webhook.NewSigningKey()
	body := []byte(vectorBody)
	set := func(sig string) func(http.Header) {
		return func(h http.Header) { h.Set(webhook.HeaderSignature, sig) }
	}
	v1aBody := strings.TrimPrefix(vectorV1aSignature, "v1a,")
	tests := []struct {
		name    string
		secrets []string
		pubs    []string
		signed  []string // the secrets and keys the delivery is signed with; default the vector key
		edit    func(http.Header)
		body    string
		now     int64
		wantErr error
	}{
		{name: "fixed vector", pubs: []string{vectorPublicKey}, edit: set(vectorV1aSignature)},
		{name: "either listed public key", pubs: []string{otherPK, vectorPublicKey}},
		{name: "rotation header, old key", pubs: []string{vectorPublicKey}, signed: []string{otherSK, vectorSigningKey}},
		{name: "rotation header, new key", pubs: []string{otherPK}, signed: []string{otherSK, vectorSigningKey}},
		{name: "v1 and v1a header, public key", pubs: []string{vectorPublicKey}, signed: []string{vectorSecret, vectorSigningKey}},
		{name: "v1 and v1a header, secret", secrets: []string{vectorSecret}, signed: []string{vectorSecret, vectorSigningKey}},
		{name: "v1a and v1 header, secret", secrets: []string{vectorSecret}, signed: []string{vectorSigningKey, vectorSecret}},
		{name: "v1 and v1a header, wrong secret, right key", secrets: []string{otherSecret}, pubs: []string{vectorPublicKey}, signed: []string{vectorSecret, vectorSigningKey}},
		{name: "v1 and v1a header, right secret, wrong key", secrets: []string{vectorSecret}, pubs: []string{otherPK}, signed: []string{vectorSecret, vectorSigningKey}},
		{name: "among unknown versions", pubs: []string{vectorPublicKey}, edit: set("v2," + v1aBody + " v1a,abc " + vectorV1aSignature + " v1b," + v1aBody)},
		{name: "in a second header line", pubs: []string{vectorPublicKey}, edit: func(h http.Header) {
			h.Set(webhook.HeaderSignature, "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=")
			h.Add(webhook.HeaderSignature, vectorV1aSignature)
		}},
		{name: "wrong key", pubs: []string{otherPK}, wantErr: webhook.ErrInvalidSignature},
		{name: "v1a only, verifier has the secret only", secrets: []string{vectorSecret}, wantErr: webhook.ErrInvalidSignature},
		{name: "v1 only, verifier has the public key only", pubs: []string{vectorPublicKey}, edit: set(vectorSignature), wantErr: webhook.ErrInvalidSignature},
		{name: "tampered body", pubs: []string{vectorPublicKey}, body: `{"test": 2432232315}`, wantErr: webhook.ErrInvalidSignature},
		{name: "tampered id", pubs: []string{vectorPublicKey}, wantErr: webhook.ErrInvalidSignature, edit: func(h http.Header) { h.Set(webhook.HeaderID, vectorMsgID+"x") }},
		{name: "tampered timestamp", pubs: []string{vectorPublicKey}, wantErr: webhook.ErrInvalidSignature, edit: func(h http.Header) { h.Set(webhook.HeaderTimestamp, strconv.Itoa(vectorTimestamp+1)) }},
		{name: "signature labelled v1", pubs: []string{vectorPublicKey}, edit: set("v1," + v1aBody), wantErr: webhook.ErrInvalidSignature},
		{name: "signature flipped in one bit", pubs: []string{vectorPublicKey}, edit: set("v1a,e" + v1aBody[1:]), wantErr: webhook.ErrInvalidSignature},
		{name: "truncated signature", pubs: []string{vectorPublicKey}, edit: set(vectorV1aSignature[:60]), wantErr: webhook.ErrInvalidSignature},
		{name: "signature without padding", pubs: []string{vectorPublicKey}, edit: set(strings.TrimRight(vectorV1aSignature, "=")), wantErr: webhook.ErrInvalidSignature},
		{name: "signature not base64", pubs: []string{vectorPublicKey}, edit: set("v1a,-" + v1aBody[1:]), wantErr: webhook.ErrInvalidSignature},
		{name: "empty v1a", pubs: []string{vectorPublicKey}, edit: set("v1a,"), wantErr: webhook.ErrInvalidSignature},
		{name: "5 minutes old is still fine", pubs: []string{vectorPublicKey}, now: vectorTimestamp + 300},
		{name: "stale", pubs: []string{vectorPublicKey}, now: vectorTimestamp + 301, wantErr: webhook.ErrTimestampOutOfRange},
		{name: "future", pubs: []string{vectorPublicKey}, now: vectorTimestamp - 301, wantErr: webhook.ErrTimestampOutOfRange},
		{name: "stale and wrong key is a bad signature", pubs: []string{otherPK}, now: vectorTimestamp + 3600, wantErr: webhook.ErrInvalidSignature},
		{
			name: "the genuine one after too many v1a signatures", pubs: []string{vectorPublicKey}, wantErr: webhook.ErrInvalidSignature,
			edit: set(strings.Repeat("v1a,"+strings.Repeat("A", 86)+"== ", webhook.MaxAsymmetricSignatures) + vectorV1aSignature),
		},
		{
			name: "the genuine one as the last allowed", pubs: []string{vectorPublicKey},
			edit: set(strings.Repeat("v1a,"+strings.Repeat("A", 86)+"== ", webhook.MaxAsymmetricSignatures-1) + vectorV1aSignature),
		},
		{
			name: "a genuine v1 signature is not held back by many v1a ones", secrets: []string{vectorSecret}, pubs: []string{vectorPublicKey},
			edit: set(strings.Repeat("v1a,"+strings.Repeat("A", 86)+"== ", 100) + vectorSignature),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			now := tt.now
			if now == 0 {
				now = vectorTimestamp
			}
			v := newVerifier(t, webhook.VerifierConfig{Secrets: tt.secrets, PublicKeys: tt.pubs, NowFunc: fixedClock(now)})
			signed := tt.signed
			if signed == nil {
				signed = []string{vectorSigningKey}
			}
			h := v1aHeader(t, signed...)
			if tt.edit != nil {
				tt.edit(h)
			}
			b := body
			if tt.body != "" {
				b = []byte(tt.body)
			}
			got, err := v.Verify(h, b)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Verify: err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if got.ID != h.Get(webhook.HeaderID) || got.Timestamp.Unix() != vectorTimestamp {
				t.Errorf("Verify = %+v", got)
			}
		})
	}
}

func TestNewVerifierKeys(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     webhook.VerifierConfig
		wantMsg string // empty: ok
	}{
		{"public key only", webhook.VerifierConfig{PublicKeys: []string{vectorPublicKey}}, ""},
		{"secret and public key", webhook.VerifierConfig{Secrets: []string{vectorSecret}, PublicKeys: []string{vectorPublicKey}}, ""},
		{"public key with a final newline", webhook.VerifierConfig{PublicKeys: []string{vectorPublicKey + "\n"}}, ""},
		{"neither", webhook.VerifierConfig{Secrets: []string{}, PublicKeys: []string{}}, "secret or public key is required"},
		{"signing key as a public key", webhook.VerifierConfig{PublicKeys: []string{vectorSigningKey}}, "public key 1: invalid webhook signing key: this is a whsk_ secret signing key"},
		{"second public key bad", webhook.VerifierConfig{PublicKeys: []string{vectorPublicKey, "whpk_nope"}}, "public key 2"},
		{"public key as a secret", webhook.VerifierConfig{Secrets: []string{vectorPublicKey}}, "secret 1: invalid webhook secret: an Ed25519 key of the scheme v1a"},
		{"signing key as a secret", webhook.VerifierConfig{Secrets: []string{vectorSigningKey}}, "secret 1: invalid webhook secret: an Ed25519 key of the scheme v1a"},
		{"secret as a public key", webhook.VerifierConfig{PublicKeys: []string{vectorSecret}}, "whsec_ secret of the symmetric scheme v1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := webhook.NewVerifier(tt.cfg)
			if tt.wantMsg == "" {
				if err != nil {
					t.Fatalf("NewVerifier: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("NewVerifier: err = %v, want it to say %q", err, tt.wantMsg)
			}
			for _, k := range append(tt.cfg.Secrets, tt.cfg.PublicKeys...) {
				if body := k[5:]; len(body) >= 8 && strings.Contains(err.Error(), body[:8]) {
					t.Errorf("error %q repeats a key", err)
				}
			}
		})
	}
}
