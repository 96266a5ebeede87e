package dispatch

import "github.com/dispatch24/dispatch24/internal/delivery"

// DeliveryID is delivery.DeliveryID.
//
// Deprecated: use delivery.DeliveryID; this forward remains until internal/endpoint imports
// internal/delivery instead.
func DeliveryID(eventID, webhookID string) string { return delivery.DeliveryID(eventID, webhookID) }
