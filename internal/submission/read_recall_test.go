package submission

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/dispatch24/dispatch24/internal/httpapi"
)

// arrivingBody hands out its bytes and records the largest buffer it was asked to fill: what
// the reader had allocated before those bytes arrived.
type arrivingBody struct {
	data    []byte
	largest int
}

func (b *arrivingBody) Read(p []byte) (int, error) {
	b.largest = max(b.largest, len(p))
	if len(b.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p, b.data)
	b.data = b.data[n:]
	return n, nil
}

// TestReadRecallDoesNotTrustContentLength: a client declaring a megabyte and sending a few
// bytes does not get a megabyte allocated for it; a declared length past the limit is a 413;
// small declared recalls are still read whole.
func TestReadRecallDoesNotTrustContentLength(t *testing.T) {
	t.Parallel()
	body := &arrivingBody{data: []byte(`{"startTime":`)}
	r := httptest.NewRequest("POST", "/", body)
	r.ContentLength = MaxRecallBytes
	// (A real server's body reports the missing bytes as an error; this one just ends.)
	_, _ = readRecall(httptest.NewRecorder(), r)
	if body.largest > recallPrealloc {
		t.Fatalf("a %d-byte buffer was allocated for a declared %d bytes before they arrived", body.largest, r.ContentLength)
	}

	r = httptest.NewRequest("POST", "/", &arrivingBody{data: []byte("{}")})
	r.ContentLength = MaxRecallBytes + 1
	_, err := readRecall(httptest.NewRecorder(), r)
	var p *httpapi.Problem
	if !errors.As(err, &p) || p.Status != http.StatusRequestEntityTooLarge {
		t.Fatalf("declared past the limit: %v, want 413", err)
	}

	small := []byte(validRecall)
	r = httptest.NewRequest("POST", "/", &arrivingBody{data: small})
	r.ContentLength = int64(len(small))
	got, err := readRecall(httptest.NewRecorder(), r)
	if err != nil || string(got) != validRecall {
		t.Fatalf("small recall: %v %q", err, got)
	}
}
