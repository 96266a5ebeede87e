package delivery

import (
	"crypto/sha256"
	"encoding/hex"
)

// deliveryIDPrefix starts every delivery id.
const deliveryIDPrefix = "dlv_"

// DeliveryID is the deterministic id of the first delivery of event eventID to endpoint
// webhookID: "dlv_" and the first 26 hex digits of SHA-256(eventID "\x00" webhookID). A
// redelivered message therefore updates the delivery it already created instead of adding
// another. Replays get random ids of their own.
func DeliveryID(eventID, webhookID string) string {
	h := sha256.New()
	h.Write([]byte(eventID))
	h.Write([]byte{0})
	h.Write([]byte(webhookID))
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	var out [len(deliveryIDPrefix) + 26]byte
	copy(out[:], deliveryIDPrefix)
	hex.Encode(out[len(deliveryIDPrefix):], sum[:13])
	return string(out[:])
}
