package store

import (
	"context"
	"time"
)

// Accounts runs the queries of the users (with their survey assignments, user_surveys),
// refresh tokens, personal access tokens and sign-in failures tables. internal/auth owns them;
// internal/survey revokes its respondents' refresh tokens through RevokeUserRefreshTokens,
// RevokeRefreshTokensOf and RevokeSurveyRefreshTokens, inside its own transactions.
//
// Methods that run several statements (InsertUser, SetUserSurveys) are atomic only inside
// Driver.InTx. Times are stored to the microsecond; the records' times come back in UTC.
type Accounts interface {
	// UserByEmail returns the global account with this (lower-cased) e-mail, without its
	// surveys; ErrNotFound when there is none.
	UserByEmail(ctx context.Context, email string) (User, error)
	// UserByID returns a global account with its surveys; ErrNotFound when there is none.
	UserByID(ctx context.Context, id string) (User, error)
	// Users returns every global account with its surveys, ordered by e-mail.
	Users(ctx context.Context) ([]User, error)
	// UserAccess returns what authenticating a request reads of an account: its e-mail,
	// roles and state (Surveys and PasswordHash stay empty); ErrNotFound when there is none.
	UserAccess(ctx context.Context, id string) (User, error)
	// UserSurveys returns the ids of the surveys assigned to an account, sorted.
	UserSurveys(ctx context.Context, id string) ([]string, error)
	// InsertUser writes a new account and its survey assignments; ErrConflict when the e-mail
	// is taken.
	InsertUser(ctx context.Context, u User) error
	// UpdateUser writes every column of an existing account except created_at (not its
	// surveys); ErrNotFound when there is none, ErrConflict when the e-mail is taken.
	UpdateUser(ctx context.Context, u User) error
	// SetUserSurveys replaces an account's survey assignments.
	SetUserSurveys(ctx context.Context, id string, surveys []string) error
	// DeleteUser deletes an account with its assignments and personal access tokens;
	// ErrNotFound when there is none.
	DeleteUser(ctx context.Context, id string) error
	// CountUsers counts the global accounts.
	CountUsers(ctx context.Context) (int, error)
	// CountEnabledWithRole counts the enabled accounts that have role (a plain word: admin,
	// staff).
	CountEnabledWithRole(ctx context.Context, role string) (int, error)

	// InsertRefreshToken records an issued refresh token.
	InsertRefreshToken(ctx context.Context, t RefreshToken) error
	// RefreshToken returns a refresh token's record joined, in one round trip, with the
	// current state of its account; ErrNotFound when the jti is unknown.
	RefreshToken(ctx context.Context, jti string) (RefreshTokenState, error)
	// RevokeRefreshToken revokes one live refresh token of userID; false when there was none.
	RevokeRefreshToken(ctx context.Context, jti, userID string, now time.Time) (bool, error)
	// RevokeUserRefreshTokens revokes every live refresh token of an account.
	RevokeUserRefreshTokens(ctx context.Context, userID string, now time.Time) error
	// RevokeRefreshTokensOf revokes the live refresh tokens of several accounts at once
	// (nothing when userIDs is empty).
	RevokeRefreshTokensOf(ctx context.Context, userIDs []string, now time.Time) error
	// RevokeSurveyRefreshTokens revokes the live refresh tokens of every respondent of a
	// survey.
	RevokeSurveyRefreshTokens(ctx context.Context, surveyID string, now time.Time) error
	// PruneRefreshTokens deletes the refresh tokens that expired at or before before and
	// returns how many.
	PruneRefreshTokens(ctx context.Context, before time.Time) (int64, error)

	// InsertPersonalAccessToken records a new personal access token (its hash only).
	InsertPersonalAccessToken(ctx context.Context, p PersonalAccessToken) error
	// PersonalAccessTokens lists an account's personal access tokens, oldest first (Hash
	// stays empty).
	PersonalAccessTokens(ctx context.Context, userID string) ([]PersonalAccessToken, error)
	// PersonalAccessTokenByHash returns the token with this hash and its owner's current
	// state, in one round trip; ErrNotFound when there is none.
	PersonalAccessTokenByHash(ctx context.Context, hash string) (PersonalAccessTokenOwner, error)
	// TouchPersonalAccessToken records a use at now unless one was recorded at or after
	// staleBefore, so concurrent replicas write at most once per interval.
	TouchPersonalAccessToken(ctx context.Context, id string, now, staleBefore time.Time) error
	// DeletePersonalAccessToken deletes one token of userID; ErrNotFound when there is none.
	DeletePersonalAccessToken(ctx context.Context, userID, id string) error
	// DeleteUserPersonalAccessTokens deletes every personal access token of an account.
	DeleteUserPersonalAccessTokens(ctx context.Context, userID string) error

	// TakeSignInFailure records a failure (key, at, attempt) unless key already has limit
	// failures after since; true when it was recorded.
	TakeSignInFailure(ctx context.Context, key, attempt string, at, since time.Time, limit int) (bool, error)
	// RecentSignInFailures returns up to n failure times of key after since, newest first.
	RecentSignInFailures(ctx context.Context, key string, since time.Time, n int) ([]time.Time, error)
	// DeleteSignInFailures deletes every failure of key.
	DeleteSignInFailures(ctx context.Context, key string) error
	// DeleteSignInAttempt deletes the failure that attempt recorded under key.
	DeleteSignInAttempt(ctx context.Context, key, attempt string) error
	// PruneSignInFailures deletes the failures at or before before and returns how many.
	PruneSignInFailures(ctx context.Context, before time.Time) (int64, error)
}

// User is a global account (a users row with its survey assignments).
type User struct {
	ID           string
	Email        string // lower-cased
	Name         string
	PasswordHash string
	Roles        []string // stored comma-separated
	Surveys      []string // sorted ids of the assigned surveys
	Disabled     bool
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// The kinds of account a refresh token belongs to.
const (
	AccountGlobal     = "global"     // a users row
	AccountRespondent = "respondent" // a respondents row
)

// RefreshToken is an issued refresh token's record.
type RefreshToken struct {
	JTI       string
	UserID    string
	Kind      string // AccountGlobal or AccountRespondent
	CreatedAt time.Time
	ExpiresAt time.Time
	RevokedAt time.Time // zero while live
}

// RefreshTokenState is a refresh token's record with the current state of its account.
type RefreshTokenState struct {
	RefreshToken
	// Exists and Disabled describe the account now.
	Exists   bool
	Disabled bool
	// Roles of a global account.
	Roles []string
	// SurveyID and Username of a respondent.
	SurveyID string
	Username string
}

// PersonalAccessToken is a personal access token's record; the token itself is never stored.
type PersonalAccessToken struct {
	ID         string
	UserID     string
	Name       string
	Hash       string // hex SHA-256 of the token
	CreatedAt  time.Time
	ExpiresAt  time.Time
	LastUsedAt time.Time // zero when never used
}

// PersonalAccessTokenOwner is a personal access token with its owner's current state.
type PersonalAccessTokenOwner struct {
	PersonalAccessToken
	Email    string
	Roles    []string
	Disabled bool
}
