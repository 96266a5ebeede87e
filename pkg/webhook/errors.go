package webhook

import "errors"

// Sentinel errors. Verify and ValidateURL wrap them with detail, so test with errors.Is.
var (
	// ErrMissingHeaders means a webhook-id, webhook-timestamp or webhook-signature header (or,
	// when the verifier expects a JWT, the Authorization header) is absent or empty.
	ErrMissingHeaders = errors.New("missing webhook headers")
	// ErrInvalidSignature means no signature in webhook-signature matches: no v1 signature is
	// the HMAC under any of the secrets, and no v1a signature verifies with any of the public
	// keys.
	ErrInvalidSignature = errors.New("invalid webhook signature")
	// ErrTimestampOutOfRange means the signature is genuine but webhook-timestamp is further from
	// the verifier's clock than its tolerance: a replay or a badly skewed clock.
	ErrTimestampOutOfRange = errors.New("webhook timestamp out of range")
	// ErrInvalidToken means the Authorization JWT is malformed, has a bad signature or algorithm,
	// a wrong issuer or audience, or has expired. The jwt/v5 cause (such as jwt.ErrTokenExpired)
	// is wrapped alongside it.
	ErrInvalidToken = errors.New("invalid authorization token")
	// ErrBodyMismatch means the JWT's bodySha256 claim is absent or does not match the body.
	ErrBodyMismatch = errors.New("body does not match token")
	// ErrInvalidSecret means a signing secret is not whsec_ followed by base64 of 24 to 64 bytes.
	ErrInvalidSecret = errors.New("invalid webhook secret")
	// ErrInvalidKey means an Ed25519 key is not "whsk_" (or "whpk_") followed by the canonical
	// base64 of 64 (or 32) bytes, or a signing key's public half does not belong to its seed.
	ErrInvalidKey = errors.New("invalid webhook signing key")
	// ErrInvalidURL means a webhook URL is unusable: bad syntax, scheme, credentials, host, or an
	// address that is not public (in which case ErrBlockedAddress is wrapped as well).
	ErrInvalidURL = errors.New("invalid webhook URL")
	// ErrBlockedAddress means an address is loopback, private, link-local or otherwise not
	// public, and not inside the allowed networks. *BlockedAddressError carries the detail.
	ErrBlockedAddress = errors.New("blocked address")
)
