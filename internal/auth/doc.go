// Package auth is Dispatch24's authentication and account administration (CONTRACT section 3,
// seed 004): sign-in of global accounts and survey respondents, the refresh/access token pair,
// personal access tokens, the global account routes and the first admin.
//
// # Tokens
//
// Our own tokens are HS256 JWTs keyed with TOKEN_SECRET. Parsing pins the algorithm, the
// issuer, the token type and requires an expiry, so a refresh token is never accepted where an
// access token is expected and the other way round. Refresh tokens are long-lived and recorded
// by jti in refresh_tokens: /api/refresh checks the record (unknown, revoked or expired → 401)
// and that the account still exists and is enabled. Access tokens are short-lived and not
// recorded.
//
// # Authentication of requests
//
// Service implements httpapi.Authenticator; the router's policies do the authorisation. An
// access token of a global account is only a pointer to the account: its roles, its disabled
// flag and its survey assignments are read from the store on every request, so demoting or
// disabling an account bites at once. A respondent's access token is self-contained (user,
// survey, username) because respondents are checked again at every refresh, at most
// ACCESS_TOKEN_TTL apart.
//
// Personal access tokens ("d24pat_" + 32 random bytes, base64url) are stored as SHA-256
// hashes only and act with their owner's current roles. Their last use is recorded at most
// once a minute per token, so authenticated reads do not each cost a write.
//
// # Sign-in
//
// Passwords are argon2id (internal/password). A sign-in for an unknown account verifies
// against a dummy hash of the same cost, so it takes as long as a wrong password. Every check
// and hash runs within the process's password.Hasher (Config.Hasher, shared with the survey
// service): when no room comes within its short wait the request gets 503 busy with
// Retry-After, and a sign-in refused that way gives back its reservation, as no guess was
// checked. A sign-in first takes a place with Hasher.Admit, so beyond MaxPending waiting
// sign-ins it is refused at once, before touching the store. So a flood of sign-ins, with
// invented e-mails or not, waits briefly or is refused instead of running one 19 MiB hash per
// request at once.
//
// Failures are counted in signin_failures, shared by every replica, under two keys: the
// account key with the client address (MaxFailures) and the client address alone across all
// accounts and methods (MaxAddressFailures). Each attempt reserves a row under both before the
// password is checked, so parallel guesses cannot overtake the limits; a success drops the
// account key's rows and its own row of the address, so signing in to an account one holds
// does not clear the count of guesses at others. The client address is httpapi.ClientIP:
// the TCP peer, or what TRUSTED_PROXIES allow X-Forwarded-For to say.
//
// Setting a global account's password revokes its refresh tokens; set by another account (a
// reset) it also deletes the account's personal access tokens, which only their owner can
// list and delete.
//
// # Storage
//
// The package owns the accounts tables (users with their survey assignments, refresh_tokens,
// personal_access_tokens, signin_failures) and reaches them only through store.Accounts
// (db.Driver.Accounts(), or tx.Accounts() inside Driver.InTx when several writes commit
// together); their SQL lives in the store drivers. Sign-in also reads respondents (and
// upgrades an imported password hash) through the sign-in view store.Accounts gives of them.
package auth
