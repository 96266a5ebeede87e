package delivery

import (
	"strings"
	"unicode/utf8"

	"github.com/dispatch24/dispatch24/pkg/webhook"
)

// ResponseBodyText makes a receiver's answer storable as text in both databases: valid UTF-8
// (invalid bytes become U+FFFD) without NUL characters (PostgreSQL's text type refuses them;
// they are dropped), at most webhook.MaxResponseBodyBytes long, cut at a character. It is the
// one sanitiser of attempt-log bodies: the engine's attempts and test sends both use it.
func ResponseBodyText(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if len(b) > webhook.MaxResponseBodyBytes {
		b = b[:webhook.MaxResponseBodyBytes]
	}
	s := string(b)
	if utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 {
		return s
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\x00", "")
	// Replacement characters are longer than the bytes they replace: cut again at a rune.
	if len(s) > webhook.MaxResponseBodyBytes {
		cut := webhook.MaxResponseBodyBytes
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	return s
}
