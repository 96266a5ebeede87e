// Package endpoint administers the webhook endpoints of a survey (CONTRACT section 6): the
// registration, listing, change and deletion of endpoints, the rotation of their signing
// secrets, and the test send that delivers a webhook.test event at once.
//
// An endpoint signs with one of two schemes (its signatureScheme, CONTRACT section 8): "v1",
// the HMAC-SHA256 of a whsec_ secret the receiver shares, or "v1a", the Ed25519 signature of a
// whsk_ signing key whose whpk_ public key is all the receiver gets. The signing key takes the
// secret's place everywhere (the same columns, sealing, rotation and 24-hour overlap), and
// pkg/webhook picks the scheme by each secret's prefix, so the dispatch engine and test sends
// sign either kind alike. The signing key never leaves the service: answers show the public
// key, derived from it. A PATCH that changes the scheme is a rotation to a secret of the new
// scheme: the old secret, of the old scheme, still signs during the overlap, so receivers can
// move from one to the other without missing a delivery.
//
// It owns the webhooks table and the webhooks version (store.Webhooks, through db.Driver): the
// dispatch engine reads a survey's endpoints through Store.LoadSurvey and disables endpoints
// through the same family. The failure counters are the engine's, except that re-enabling an
// endpoint resets them; disabling one by hand writes a webhook.disabled event to the outbox in
// the same transaction (the engine writes its own disablings' events). Signing secrets are stored sealed with SECRETS_KEY (internal/secret),
// opened as they are read, and shown only in the answers to create and rotate.
package endpoint

import (
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/dispatch24/dispatch24/internal/ids"
	"github.com/dispatch24/dispatch24/internal/store"
	"github.com/dispatch24/dispatch24/pkg/events"
	"github.com/dispatch24/dispatch24/pkg/webhook"
)

// DefaultRotationGrace is how long the previous secret keeps signing after a rotation.
const DefaultRotationGrace = 24 * time.Hour

// ReasonManual is the disabled_reason of an endpoint disabled through the API.
const ReasonManual = "manual"

// The signature schemes an endpoint signs with.
const (
	// SchemeV1 signs with the HMAC-SHA256 of a whsec_ secret (the default).
	SchemeV1 = store.SignatureSchemeV1
	// SchemeV1a signs with the Ed25519 signature of a whsk_ signing key.
	SchemeV1a = store.SignatureSchemeV1a
)

// The orderings of an endpoint (its ordering, CONTRACT section 8).
const (
	// OrderingNone delivers events as they come, many at a time (the default).
	OrderingNone = store.OrderingNone
	// OrderingFIFO delivers events one at a time, in the order they were accepted (see
	// internal/dispatch, "FIFO endpoints").
	OrderingFIFO = store.OrderingFIFO
)

// ValidOrdering reports whether ordering is OrderingNone or OrderingFIFO.
func ValidOrdering(ordering string) bool { return ordering == OrderingNone || ordering == OrderingFIFO }

// ValidScheme reports whether scheme is SchemeV1 or SchemeV1a.
func ValidScheme(scheme string) bool { return scheme == SchemeV1 || scheme == SchemeV1a }

// newSecret returns a fresh signing secret of scheme: a whsec_ secret for v1, a whsk_ signing
// key for v1a.
func newSecret(scheme string) string {
	if scheme == SchemeV1a {
		key, _ := webhook.NewSigningKey()
		return key
	}
	return webhook.NewSecret()
}

// ErrSurveyNotFound is returned when an endpoint is created for a survey that does not exist.
var ErrSurveyNotFound = errors.New("survey not found")

// Endpoint is one webhook endpoint of a survey.
type Endpoint struct {
	ID          string
	SurveyID    string
	URL         string
	Description string
	// Events are the subscribed event types.
	Events []string
	// SignatureScheme is SchemeV1 or SchemeV1a: the kind of Secret.
	SignatureScheme string
	// Secret is the current signing secret: a whsec_ secret (v1) or a whsk_ signing key (v1a),
	// which never leaves the service.
	Secret string
	// PreviousSecret signs as well until PreviousSecretUntil, after a rotation.
	PreviousSecret      string
	PreviousSecretUntil time.Time
	// Ordering is OrderingNone or OrderingFIFO.
	Ordering string

	Disabled       bool
	DisabledReason string
	DisabledAt     time.Time // zero while enabled

	// ConsecutiveFailures and FirstFailureAt are maintained by the dispatch engine.
	ConsecutiveFailures int
	FirstFailureAt      time.Time

	// RateLimit is the most deliveries a second to the endpoint, across all dispatchers
	// (CONTRACT section 8, rateLimit); 0 is no limit.
	RateLimit int

	CreatedAt time.Time
	UpdatedAt time.Time
}

// Rotating reports whether the previous secret still signs at now.
func (e *Endpoint) Rotating(now time.Time) bool {
	return e.PreviousSecret != "" && now.Before(e.PreviousSecretUntil)
}

// PublicKey returns the whpk_ public key of a v1a endpoint's current signing key; "" for a v1
// endpoint.
func (e *Endpoint) PublicKey() (string, error) {
	if e.SignatureScheme != SchemeV1a {
		return "", nil
	}
	return webhook.PublicKeyOf(e.Secret)
}

// SigningSecrets returns the secrets that sign a delivery made at now: the current one, then
// the previous one during a rotation's grace period.
func (e *Endpoint) SigningSecrets(now time.Time) []string {
	if e.Rotating(now) {
		return []string{e.Secret, e.PreviousSecret}
	}
	return []string{e.Secret}
}

// NewID returns a new endpoint id: "wh_" and the hex of a UUIDv7.
func NewID() string {
	return ids.New("wh_")
}

// NormalizeEvents checks a requested list of event types and removes repeats, keeping the
// first occurrence of each. It returns a message fit for a validation error when the list is
// empty or names an unknown type.
func NormalizeEvents(types []string) ([]string, string) {
	if len(types) == 0 {
		return nil, "must list at least one event type"
	}
	out := make([]string, 0, len(types))
	for _, t := range types {
		if !events.ValidType(t) {
			return nil, "unknown event type " + quote(t) + "; known types: " + strings.Join(events.Types, ", ")
		}
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out, ""
}

// quote shortens and quotes a user-supplied value for an error message.
func quote(s string) string {
	const limit = 64
	if len(s) > limit {
		s = s[:limit] + "…"
	}
	return `"` + strings.ToValidUTF8(s, "") + `"`
}
