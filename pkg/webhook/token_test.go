package webhook_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dispatch24/dispatch24/pkg/webhook"
)

func TestSignTokenIndependently(t *testing.T) {
	t.Parallel()
	key := []byte("an opaque shared secret, 32+ characters")
	body := []byte(`{"id":"evt_1","type":"survey.session.submitted"}`)
	iat := time.Unix(1_800_000_000, 0)
	params := webhook.TokenParams{
		Issuer:       "intake24",
		Audience:     "https://example.org/hook?x=1",
		Subject:      "resp-42",
		Type:         "survey.session.submitted",
		SurveyID:     "demo-survey",
		SessionID:    "ses_1",
		UserID:       "usr_1",
		SubmissionID: "sub_1",
		IssuedAt:     iat,
	}
	token, err := webhook.SignToken(key, params, body)
	if err != nil {
		t.Fatalf("SignToken: %v", err)
	}
	header, claims := refVerifyJWT(t, token, key)
	if header["typ"] != "JWT" || len(header) != 2 {
		t.Errorf("header = %v, want exactly alg HS256 and typ JWT", header)
	}
	want := map[string]any{
		"iss":          "intake24",
		"aud":          "https://example.org/hook?x=1", // a string, not an array
		"sub":          "resp-42",
		"iat":          json.Number("1800000000"),
		"exp":          json.Number("1800000300"),
		"type":         "survey.session.submitted",
		"surveyId":     "demo-survey",
		"sessionId":    "ses_1",
		"userId":       "usr_1",
		"submissionId": "sub_1",
		"bodySha256":   refBodySHA256(body),
	}
	jti, _ := claims["jti"].(string)
	if len(jti) < 16 {
		t.Errorf("jti = %q, want a random id", jti)
	}
	delete(claims, "jti")
	for k, v := range want {
		if claims[k] != v {
			t.Errorf("claim %s = %#v, want %#v", k, claims[k], v)
		}
	}
	for k := range claims {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected claim %s", k)
		}
	}

	// jti is unique per attempt.
	other, err := webhook.SignToken(key, params, body)
	if err != nil {
		t.Fatalf("SignToken: %v", err)
	}
	_, otherClaims := refVerifyJWT(t, other, key)
	if otherClaims["jti"] == jti {
		t.Error("two attempts got the same jti")
	}
}

func TestSignTokenOmitsEmptyEventFields(t *testing.T) {
	t.Parallel()
	key := []byte("k")
	token, err := webhook.SignToken(key, webhook.TokenParams{Issuer: "intake24", Audience: "https://x.example/", Type: "webhook.test"}, nil)
	if err != nil {
		t.Fatalf("SignToken: %v", err)
	}
	_, claims := refVerifyJWT(t, token, key)
	var keys []string
	for k := range claims {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if got := strings.Join(keys, ","); got != "aud,bodySha256,exp,iat,iss,jti,type" {
		t.Errorf("claims = %s", got)
	}
	if claims["bodySha256"] != refBodySHA256(nil) {
		t.Errorf("bodySha256 of an empty body = %v", claims["bodySha256"])
	}
}

func TestSignTokenNeedsKey(t *testing.T) {
	t.Parallel()
	if _, err := webhook.SignToken(nil, webhook.TokenParams{}, nil); err == nil {
		t.Fatal("SignToken with no key succeeded")
	}
}
