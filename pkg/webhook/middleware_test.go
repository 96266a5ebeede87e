package webhook_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/dispatch24/dispatch24/pkg/webhook"
)

func TestMiddleware(t *testing.T) {
	t.Parallel()
	v := newVerifier(t, webhook.VerifierConfig{Secrets: []string{vectorSecret}, MaxBodyBytes: 64})
	var gotBody []byte
	var gotID string
	h := v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, ok := webhook.FromContext(r.Context())
		if !ok {
			t.Error("no *Verified in the context")
			return
		}
		gotID = d.ID
		gotBody, _ = io.ReadAll(r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))

	tests := []struct {
		name       string
		header     http.Header
		body       string
		wantStatus int
	}{
		{"verified", vectorHeader(), vectorBody, http.StatusNoContent},
		{"bad signature", vectorHeader(), `{"test": 1}`, http.StatusUnauthorized},
		{"missing headers", http.Header{}, vectorBody, http.StatusBadRequest},
		{"too large", vectorHeader(), strings.Repeat("x", 65), http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gotBody, gotID = nil, ""
			req := httptest.NewRequest(http.MethodPost, "/hook", strings.NewReader(tt.body))
			req.Header = tt.header
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d (%s)", rec.Code, tt.wantStatus, rec.Body)
			}
			if tt.wantStatus != http.StatusNoContent {
				if gotBody != nil {
					t.Error("next was called for a failed delivery")
				}
				return
			}
			if !bytes.Equal(gotBody, []byte(tt.body)) || gotID != vectorMsgID {
				t.Errorf("next saw body %q id %q", gotBody, gotID)
			}
		})
	}
}
