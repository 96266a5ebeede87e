// Package secret seals the secrets the service keeps in its store — webhook signing secrets
// (webhooks.secret, webhooks.previous_secret) and survey jwtSecrets (surveys.jwt_secret), and
// next the v1a Ed25519 private keys — with SECRETS_KEY, so that a copy of the database (a
// backup, a dump, a read-only injection) does not give away the keys that sign deliveries or
// verify create-user tokens.
//
// # Keys
//
// A key is 32 random bytes, written as base64 (standard or URL alphabet, padded or not: e.g.
// `openssl rand -base64 32`) or as 64 hex digits. ParseKey refuses anything else, and keys
// with fewer than 16 distinct byte values (all zeros, a repeated pattern), which no random key
// has. A key's id is the first 4 bytes of HMAC-SHA256(key, "dispatch24 secrets key id"), in
// hex: it names the key in stored values and in logs without revealing it.
//
// A Keyring holds the current key (SECRETS_KEY), which seals, and any previous keys
// (SECRETS_KEY_PREVIOUS, comma separated), which only open.
//
// # Stored format
//
//	enc:v1:<key id>:<base64url(nonce ‖ ciphertext ‖ tag)>
//
// AES-256-GCM with a random 96-bit nonce. The associated data is the value's prefix
// ("enc:v1:<key id>:") and its Place: table, column and row id. A ciphertext copied to another
// row, or from a survey's jwt_secret into a webhook's secret, does not open. The two webhook
// columns share one Place column, "secret": rotation moves the current secret into
// previous_secret in SQL (UPDATE … SET previous_secret = secret), and both columns hold the
// same endpoint's secrets, which sign its deliveries side by side during the overlap.
//
// # Plain values and the transition
//
// A stored value without the "enc:" prefix is a plain value written before this release (or by
// an older binary during a rolling upgrade). Open returns it as it is, and the binaries seal
// every such value at start (see Keyring.Reseal), so a database is sealed from the first start
// of this release on. New values are always sealed. A plain value that itself starts with
// "enc:" cannot be told from a damaged sealed one and stops the start with an error naming its
// row; no value the service generates looks like that, and a survey jwtSecret set before this
// release would have had to be chosen so.
//
// # Rotation
//
// Reseal reports whether a stored value needs writing again: plain, or sealed with a key other
// than the current one. The start-up pass of each table's owner seals such values again with
// the current key (compare-and-set on the old value, so concurrent starts and writes are
// safe), and refuses to start when a value is sealed with a key the keyring lacks, naming the
// key id: a wrong SECRETS_KEY stops the process with a clear error instead of failing each
// delivery. The procedure is in the README (Operations → rotating SECRETS_KEY).
package secret
