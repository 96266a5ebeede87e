package store

import (
	"context"
	"time"
)

// Surveys runs the queries of the surveys and respondents tables. Its owner is internal/survey;
// other packages use it only inside a transaction of Driver.InTx that must commit together with
// their own family (SurveyExists, MissingSurveys), and otherwise go through internal/survey.
//
// Reads return ErrNotFound when the row asked for does not exist; writes that break a unique
// constraint return ErrConflict. The …ForUpdate reads lock the row until the transaction ends
// (PostgreSQL; SQLite's single writer already serialises transactions) and are meant for
// read-modify-write transactions of Driver.InTx.
type Surveys interface {
	// Survey returns one survey.
	Survey(ctx context.Context, id string) (Survey, error)
	// SurveyForUpdate returns one survey and locks its row.
	SurveyForUpdate(ctx context.Context, id string) (Survey, error)
	// AllSurveys lists every survey by id.
	AllSurveys(ctx context.Context) ([]Survey, error)
	// SurveysByID lists the surveys among ids by id (none for no ids).
	SurveysByID(ctx context.Context, ids []string) ([]Survey, error)
	// SurveyExists reports whether survey id exists.
	SurveyExists(ctx context.Context, id string) (bool, error)
	// MissingSurveys returns the ids among ids that name no survey, in the order given.
	MissingSurveys(ctx context.Context, ids []string) ([]string, error)
	// SealedJWTSecret returns a survey's jwtSecret as stored (sealed), "" when none is set.
	SealedJWTSecret(ctx context.Context, id string) (string, error)
	// CreateSurvey inserts s.
	CreateSurvey(ctx context.Context, s Survey) error
	// UpdateSurvey writes every setting of s and its UpdatedAt (not its CreatedAt).
	UpdateSurvey(ctx context.Context, s Survey) error
	// DeleteSurvey deletes a survey; the schema cascades to its respondents, sessions,
	// submissions and webhooks.
	DeleteSurvey(ctx context.Context, id string) error
	// JWTSecretsNotPrefixed lists the surveys whose stored jwtSecret does not start with
	// prefix (the current key's sealed prefix): those to seal again.
	JWTSecretsNotPrefixed(ctx context.Context, prefix string) ([]SurveyJWTSecret, error)
	// SwapJWTSecret replaces a survey's stored jwtSecret by next if it still is old, and
	// reports whether it did.
	SwapJWTSecret(ctx context.Context, id, old, next string) (bool, error)

	// Respondent returns a survey's respondent by username.
	Respondent(ctx context.Context, surveyID, username string) (Respondent, error)
	// RespondentForUpdate returns a survey's respondent by username and locks its row.
	RespondentForUpdate(ctx context.Context, surveyID, username string) (Respondent, error)
	// RespondentByAuthToken returns the respondent whose URL authentication token is token.
	RespondentByAuthToken(ctx context.Context, token string) (Respondent, error)
	// Respondents returns up to limit respondents of a survey after the cursor (nil: from the
	// start), in (CreatedAt, ID) order.
	Respondents(ctx context.Context, surveyID string, after *RespondentCursor, limit int) ([]Respondent, error)
	// CreateRespondent inserts r; ErrConflict when its username (or auth token) is taken.
	CreateRespondent(ctx context.Context, r Respondent) error
	// UpdateRespondent writes r's name, password hash, custom fields, disabled flag and
	// UpdatedAt (its username, auth token and survey never change).
	UpdateRespondent(ctx context.Context, r Respondent) error
	// SetRespondentProfile writes a respondent's name and custom fields.
	SetRespondentProfile(ctx context.Context, id, name string, fields []CustomField, now time.Time) error
	// DeleteRespondent deletes a survey's respondent by username and returns its id.
	DeleteRespondent(ctx context.Context, surveyID, username string) (string, error)
	// ExistingRespondents returns the respondents of the survey among usernames, by username,
	// read in as few statements as the database allows.
	ExistingRespondents(ctx context.Context, surveyID string, usernames []string) (map[string]ExistingRespondent, error)
	// UpsertRespondents writes rows in multi-row statements: a new (survey, username) is
	// inserted as it is; an existing one gets the row's name, custom fields and UpdatedAt, and
	// its password hash only when the row has one (its id, auth token and CreatedAt are kept).
	UpsertRespondents(ctx context.Context, rows []Respondent) error
	// WeakerHashCandidates returns up to limit respondents by id after afterID whose password
	// hash is argon2id ("$argon2id$…") and does not start with fullPrefix (the full cost's).
	WeakerHashCandidates(ctx context.Context, afterID, fullPrefix string, limit int) ([]RespondentHash, error)
	// SwapPasswordHash replaces a respondent's password hash by next if it still is old, and
	// reports whether it did.
	SwapPasswordHash(ctx context.Context, id, old, next string) (bool, error)
}

// Survey is a survey's settings as stored.
type Survey struct {
	ID            string
	Name          string
	AllowGenUsers bool
	// JWTSecret is the jwtSecret as stored: sealed by internal/secret (or plain, from before
	// sealing), "" when none is set.
	JWTSecret          string
	RedirectURL        string
	RedirectIdentifier string
	AuthURLTokenLength int
	CreatedAt          time.Time
	UpdatedAt          time.Time
}

// SurveyJWTSecret is a survey's stored jwtSecret.
type SurveyJWTSecret struct {
	SurveyID  string
	JWTSecret string
}

// CustomField is one respondent custom field.
type CustomField struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Respondent is a survey respondent's account as stored.
type Respondent struct {
	ID           string
	SurveyID     string
	Username     string
	Name         string
	PasswordHash string // empty: token sign-in only
	AuthToken    string
	CustomFields []CustomField
	Disabled     bool
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// RespondentCursor is a position in a survey's respondent list: the last row of the previous
// page.
type RespondentCursor struct {
	CreatedAt time.Time
	ID        string // tie-breaker among rows created in the same microsecond
}

// ExistingRespondent is what an import needs of a respondent already in the survey.
type ExistingRespondent struct {
	ID           string
	Name         string
	CustomFields []CustomField
}

// RespondentHash is a respondent's stored password hash.
type RespondentHash struct {
	ID           string
	PasswordHash string
}
