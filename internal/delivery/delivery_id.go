package delivery

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"
)

// deliveryIDPrefix starts every delivery id.
const deliveryIDPrefix = "dlv_"

// DeliveryID is the deterministic id of the first delivery of event eventID to endpoint
// webhookID, so that a redelivered message updates the delivery it already created instead of
// adding another. For an event id of the form "evt_" + a UUIDv7 in hex (every event since
// ids.New), it is "dlv_", the 12 hex digits of the event's creation time in Unix milliseconds
// (the UUIDv7's first 48 bits), and the first 20 hex digits of SHA-256(eventID "\x00"
// webhookID): 36 characters, the shape of a replay's id ("dlv_" + UUIDv7), which starts with
// its creation time too. CreatedAt reads that time back, so that an id that is no longer
// stored can be told purged from never issued. Other event ids get LegacyDeliveryID.
func DeliveryID(eventID, webhookID string) string {
	ms, ok := uuidv7Millis(eventID, "evt_")
	if !ok {
		return LegacyDeliveryID(eventID, webhookID)
	}
	sum := idHash(eventID, webhookID)
	var out [len(deliveryIDPrefix) + 32]byte
	copy(out[:], deliveryIDPrefix)
	copy(out[len(deliveryIDPrefix):], ms)
	hex.Encode(out[len(deliveryIDPrefix)+12:], sum[:10])
	return string(out[:])
}

// LegacyDeliveryID is the first-delivery id of releases before erasure: "dlv_" and the first
// 26 hex digits of SHA-256(eventID "\x00" webhookID), carrying no time. Deliveries recorded
// under it keep it; a redelivered message matches either form (see internal/dispatch).
func LegacyDeliveryID(eventID, webhookID string) string {
	sum := idHash(eventID, webhookID)
	var out [len(deliveryIDPrefix) + 26]byte
	copy(out[:], deliveryIDPrefix)
	hex.Encode(out[len(deliveryIDPrefix):], sum[:13])
	return string(out[:])
}

func idHash(eventID, webhookID string) [sha256.Size]byte {
	h := sha256.New()
	h.Write([]byte(eventID))
	h.Write([]byte{0})
	h.Write([]byte(webhookID))
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}

// CreatedAt returns the creation time a delivery id carries (a first delivery's: its event's;
// a replay's: its own), to the millisecond; false for ids that carry none (LegacyDeliveryID,
// or not a delivery id at all).
func CreatedAt(id string) (time.Time, bool) {
	ms, ok := uuidv7Millis(id, deliveryIDPrefix)
	if !ok {
		return time.Time{}, false
	}
	n, err := strconv.ParseInt(ms, 16, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.UnixMilli(n).UTC(), true
}

// uuidv7Millis returns the 12 hex digits of time that an id of the form prefix + 32 lowercase
// hex digits starts with.
func uuidv7Millis(id, prefix string) (string, bool) {
	if len(id) != len(prefix)+32 || id[:len(prefix)] != prefix {
		return "", false
	}
	for _, c := range id[len(prefix):] {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return "", false
		}
	}
	return id[len(prefix) : len(prefix)+12], true
}
