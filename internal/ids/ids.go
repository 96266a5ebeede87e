// Package ids generates the module's identifiers: a prefix naming the kind ("evt_", "wh_",
// "dlv_", "usr_", …) and a random part. It is a leaf: the standard library and
// github.com/google/uuid only, so every package (pkg/events included) may use it.
//
// Two formats exist because ids are visible in the API and their formats predate this
// package; each kind keeps its own:
//
//   - New: prefix + the 32 lowercase hex digits of a UUIDv7. Ids grow with time, which keeps
//     keyset pages in insertion order and index inserts local. Events, submissions, sessions,
//     webhooks, deliveries, replays and respondents.
//   - Random: prefix + 16 base64url characters of 96 random bits, nothing about when it was
//     made. Accounts and personal access tokens.
package ids

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"

	"github.com/google/uuid"
)

// New returns prefix followed by the 32 lowercase hex digits of a fresh UUIDv7, such as
// "evt_0193c7f0a1b27c3d8e4f5a6b7c8d9e0f".
func New(prefix string) string {
	u := uuid.Must(uuid.NewV7())
	var out [64]byte
	b := append(out[:0], prefix...)
	b = hex.AppendEncode(b, u[:])
	return string(b)
}

// Random returns prefix followed by 96 random bits in base64url without padding (16
// characters), such as "usr_q3B0x9kF2mZ7aLpE".
func Random(prefix string) string {
	var r [12]byte
	_, _ = rand.Read(r[:]) // crypto/rand.Read never fails on supported platforms (Go 1.24+)
	var out [64]byte
	b := append(out[:0], prefix...)
	b = base64.RawURLEncoding.AppendEncode(b, r[:])
	return string(b)
}
