package delivery_test

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/dispatch24/dispatch24/internal/delivery"
	"github.com/dispatch24/dispatch24/pkg/webhook"
)

func TestResponseBodyText(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"":                 "",
		`{"ok":true}`:      `{"ok":true}`,
		"a\x00b":           "ab",
		"bad \xff utf8":    "bad \uFFFD utf8",
		"ünïcödé is fine.": "ünïcödé is fine.",
	} {
		if got := delivery.ResponseBodyText([]byte(in)); got != want {
			t.Errorf("ResponseBodyText(%q) = %q, want %q", in, got, want)
		}
	}
	for _, in := range [][]byte{
		bytes.Repeat([]byte("a\xff"), webhook.MaxResponseBodyBytes), // replacements grow the text
		bytes.Repeat([]byte("€"), 2000),                             // longer than the cap: cut at a character
		bytes.Repeat([]byte("\x00"), webhook.MaxResponseBodyBytes+10),
	} {
		got := delivery.ResponseBodyText(in)
		if len(got) > webhook.MaxResponseBodyBytes || !utf8.ValidString(got) || strings.Contains(got, "\x00") {
			t.Fatalf("ResponseBodyText(%d bytes) = %d bytes, valid %v", len(in), len(got), utf8.ValidString(got))
		}
	}
	// Within the cap, valid text comes back as it is.
	ok := strings.Repeat("x", webhook.MaxResponseBodyBytes)
	if got := delivery.ResponseBodyText([]byte(ok)); got != ok {
		t.Fatalf("a valid body of the cap's size was changed to %d bytes", len(got))
	}
}
