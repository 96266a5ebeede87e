package sqlcommon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dispatch24/dispatch24/internal/store"
)

// Surveys is the queries of the surveys and respondents tables that both databases accept.
// Each driver builds one per executor with its own Read/Write Queriers and fills in what
// differs between them.
type Surveys struct {
	Read  store.Querier // read-only statements
	Write store.Querier // statements that write
	// ForUpdate is the clause that locks the rows a read-modify-write transaction reads:
	// " FOR UPDATE" on PostgreSQL, "" on SQLite (whose single writer serialises them).
	ForUpdate string
	// BatchRows is how many respondent rows one multi-row statement of an import carries; a
	// read of existing rows binds BatchRows×10 usernames.
	BatchRows int
	// JSON binds an encoded JSON document as the database wants it.
	JSON func(b []byte) any
	// UsernameArray, when set, reads existing respondents with one array parameter
	// (username = ANY($2)) instead of an IN list of one parameter per username. PostgreSQL
	// sets it: a pooled connection that has cached a generic plan for a 10,000-parameter IN
	// list can take minutes over an import (seen in 2 of 6 runs), an array parameter plans
	// the same every time.
	UsernameArray bool
}

// svRespondentCols is the number of columns one respondent row writes.
const svRespondentCols = 10

const svSurveyColumns = `id, name, allow_gen_users, jwt_secret, redirect_url, redirect_identifier,
	auth_url_token_length, created_at, updated_at`

const svRespondentColumns = `id, survey_id, username, name, password_hash, auth_token, custom_fields,
	disabled, created_at, updated_at`

func svScanSurvey(row store.Row) (store.Survey, error) {
	var (
		s                store.Survey
		jwtSecret        *string
		created, updated int64
	)
	if err := row.Scan(&s.ID, &s.Name, &s.AllowGenUsers, &jwtSecret, &s.RedirectURL, &s.RedirectIdentifier,
		&s.AuthURLTokenLength, &created, &updated); err != nil {
		return store.Survey{}, err
	}
	if jwtSecret != nil {
		s.JWTSecret = *jwtSecret
	}
	s.CreatedAt, s.UpdatedAt = store.FromMicros(created), store.FromMicros(updated)
	return s, nil
}

func svNullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// Survey implements store.Surveys.
func (q Surveys) Survey(ctx context.Context, id string) (store.Survey, error) {
	s, err := svScanSurvey(q.Read.QueryRow(ctx, `SELECT `+svSurveyColumns+` FROM surveys WHERE id = $1`, id))
	if err != nil {
		return store.Survey{}, fmt.Errorf("reading survey %s: %w", id, err)
	}
	return s, nil
}

// SurveyForUpdate implements store.Surveys.
func (q Surveys) SurveyForUpdate(ctx context.Context, id string) (store.Survey, error) {
	s, err := svScanSurvey(q.Write.QueryRow(ctx, `SELECT `+svSurveyColumns+` FROM surveys WHERE id = $1`+q.ForUpdate, id))
	if err != nil {
		return store.Survey{}, fmt.Errorf("reading survey %s: %w", id, err)
	}
	return s, nil
}

// AllSurveys implements store.Surveys.
func (q Surveys) AllSurveys(ctx context.Context) ([]store.Survey, error) {
	return q.listSurveys(ctx, `SELECT `+svSurveyColumns+` FROM surveys ORDER BY id`)
}

// SurveysByID implements store.Surveys.
func (q Surveys) SurveysByID(ctx context.Context, ids []string) ([]store.Survey, error) {
	if len(ids) == 0 {
		return []store.Survey{}, nil
	}
	return q.listSurveys(ctx, `SELECT `+svSurveyColumns+` FROM surveys WHERE id IN `+
		store.Placeholders(1, len(ids), 1)+` ORDER BY id`, svStringArgs(ids)...)
}

func (q Surveys) listSurveys(ctx context.Context, sql string, args ...any) ([]store.Survey, error) {
	rows, err := q.Read.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("listing surveys: %w", err)
	}
	defer rows.Close()
	out := []store.Survey{}
	for rows.Next() {
		s, err := svScanSurvey(rows)
		if err != nil {
			return nil, fmt.Errorf("listing surveys: %w", err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing surveys: %w", err)
	}
	return out, nil
}

func svStringArgs(ss []string) []any {
	args := make([]any, len(ss))
	for i, s := range ss {
		args[i] = s
	}
	return args
}

// SurveyExists implements store.Surveys.
func (q Surveys) SurveyExists(ctx context.Context, id string) (bool, error) {
	var one int
	err := q.Read.QueryRow(ctx, `SELECT 1 FROM surveys WHERE id = $1`, id).Scan(&one)
	switch {
	case err == nil:
		return true, nil
	case svIsNotFound(err):
		return false, nil
	}
	return false, fmt.Errorf("looking up survey %s: %w", id, err)
}

// svMissingChunk bounds the ids one statement of MissingSurveys binds.
const svMissingChunk = 500

// MissingSurveys implements store.Surveys.
func (q Surveys) MissingSurveys(ctx context.Context, ids []string) ([]string, error) {
	found := make(map[string]bool, len(ids))
	for start := 0; start < len(ids); start += svMissingChunk {
		chunk := ids[start:min(start+svMissingChunk, len(ids))]
		rows, err := q.Read.Query(ctx, `SELECT id FROM surveys WHERE id IN `+store.Placeholders(1, len(chunk), 1),
			svStringArgs(chunk)...)
		if err != nil {
			return nil, fmt.Errorf("checking surveys: %w", err)
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return nil, fmt.Errorf("checking surveys: %w", err)
			}
			found[id] = true
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("checking surveys: %w", err)
		}
	}
	var missing []string
	for _, id := range ids {
		if !found[id] {
			missing = append(missing, id)
		}
	}
	return missing, nil
}

// SealedJWTSecret implements store.Surveys.
func (q Surveys) SealedJWTSecret(ctx context.Context, id string) (string, error) {
	var stored *string
	if err := q.Read.QueryRow(ctx, `SELECT jwt_secret FROM surveys WHERE id = $1`, id).Scan(&stored); err != nil {
		return "", fmt.Errorf("reading the jwtSecret of survey %s: %w", id, err)
	}
	if stored == nil {
		return "", nil
	}
	return *stored, nil
}

// CreateSurvey implements store.Surveys.
func (q Surveys) CreateSurvey(ctx context.Context, s store.Survey) error {
	_, err := q.Write.Exec(ctx, `INSERT INTO surveys (`+svSurveyColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		s.ID, s.Name, s.AllowGenUsers, svNullString(s.JWTSecret), s.RedirectURL, s.RedirectIdentifier,
		s.AuthURLTokenLength, store.Micros(s.CreatedAt), store.Micros(s.UpdatedAt))
	if err != nil {
		return fmt.Errorf("creating survey %s: %w", s.ID, err)
	}
	return nil
}

// UpdateSurvey implements store.Surveys.
func (q Surveys) UpdateSurvey(ctx context.Context, s store.Survey) error {
	n, err := q.Write.Exec(ctx, `UPDATE surveys SET name = $2, allow_gen_users = $3, jwt_secret = $4,
		redirect_url = $5, redirect_identifier = $6, auth_url_token_length = $7, updated_at = $8
		WHERE id = $1`,
		s.ID, s.Name, s.AllowGenUsers, svNullString(s.JWTSecret), s.RedirectURL, s.RedirectIdentifier,
		s.AuthURLTokenLength, store.Micros(s.UpdatedAt))
	if err != nil {
		return fmt.Errorf("updating survey %s: %w", s.ID, err)
	}
	if n == 0 {
		return fmt.Errorf("updating survey %s: %w", s.ID, store.ErrNotFound)
	}
	return nil
}

// DeleteSurvey implements store.Surveys.
func (q Surveys) DeleteSurvey(ctx context.Context, id string) error {
	n, err := q.Write.Exec(ctx, `DELETE FROM surveys WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("deleting survey %s: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("deleting survey %s: %w", id, store.ErrNotFound)
	}
	return nil
}

// JWTSecretsNotPrefixed implements store.Surveys.
func (q Surveys) JWTSecretsNotPrefixed(ctx context.Context, prefix string) ([]store.SurveyJWTSecret, error) {
	rows, err := q.Read.Query(ctx, `SELECT id, jwt_secret FROM surveys WHERE substr(jwt_secret, 1, $2) <> $1 ORDER BY id`,
		prefix, len(prefix))
	if err != nil {
		return nil, fmt.Errorf("survey jwt secrets: %w", err)
	}
	defer rows.Close()
	var out []store.SurveyJWTSecret
	for rows.Next() {
		var s store.SurveyJWTSecret
		if err := rows.Scan(&s.SurveyID, &s.JWTSecret); err != nil {
			return nil, fmt.Errorf("survey jwt secrets: %w", err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("survey jwt secrets: %w", err)
	}
	return out, nil
}

// SwapJWTSecret implements store.Surveys.
func (q Surveys) SwapJWTSecret(ctx context.Context, id, old, next string) (bool, error) {
	n, err := q.Write.Exec(ctx, `UPDATE surveys SET jwt_secret = $3 WHERE id = $1 AND jwt_secret = $2`, id, old, next)
	if err != nil {
		return false, fmt.Errorf("survey jwt secrets: %w", err)
	}
	return n > 0, nil
}

func svScanRespondent(row store.Row) (store.Respondent, error) {
	var (
		r                store.Respondent
		hash             *string
		fields           []byte
		created, updated int64
	)
	if err := row.Scan(&r.ID, &r.SurveyID, &r.Username, &r.Name, &hash, &r.AuthToken, &fields,
		&r.Disabled, &created, &updated); err != nil {
		return store.Respondent{}, err
	}
	if hash != nil {
		r.PasswordHash = *hash
	}
	cf, err := svDecodeFields(fields)
	if err != nil {
		return store.Respondent{}, fmt.Errorf("respondent %s: %w", r.ID, err)
	}
	r.CustomFields = cf
	r.CreatedAt, r.UpdatedAt = store.FromMicros(created), store.FromMicros(updated)
	return r, nil
}

// svEncodeFields encodes custom fields for storage, never as null.
func svEncodeFields(fields []store.CustomField) []byte {
	if len(fields) == 0 {
		return []byte("[]")
	}
	b, err := json.Marshal(fields)
	if err != nil {
		// A []CustomField of strings always marshals.
		panic(fmt.Sprintf("encoding custom fields: %v", err))
	}
	return b
}

func svDecodeFields(b []byte) ([]store.CustomField, error) {
	if len(b) == 0 {
		return nil, nil
	}
	var out []store.CustomField
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("decoding custom fields: %w", err)
	}
	return out, nil
}

func (q Surveys) appendRespondentArgs(args []any, r *store.Respondent) []any {
	return append(args, r.ID, r.SurveyID, r.Username, r.Name, svNullString(r.PasswordHash), r.AuthToken,
		q.JSON(svEncodeFields(r.CustomFields)), r.Disabled, store.Micros(r.CreatedAt), store.Micros(r.UpdatedAt))
}

// Respondent implements store.Surveys.
func (q Surveys) Respondent(ctx context.Context, surveyID, username string) (store.Respondent, error) {
	return q.respondent(ctx, q.Read, `SELECT `+svRespondentColumns+` FROM respondents WHERE survey_id = $1 AND username = $2`,
		surveyID, username)
}

// RespondentForUpdate implements store.Surveys.
func (q Surveys) RespondentForUpdate(ctx context.Context, surveyID, username string) (store.Respondent, error) {
	return q.respondent(ctx, q.Write, `SELECT `+svRespondentColumns+` FROM respondents WHERE survey_id = $1 AND username = $2`+q.ForUpdate,
		surveyID, username)
}

// RespondentByAuthToken implements store.Surveys.
func (q Surveys) RespondentByAuthToken(ctx context.Context, token string) (store.Respondent, error) {
	return q.respondent(ctx, q.Read, `SELECT `+svRespondentColumns+` FROM respondents WHERE auth_token = $1`, token)
}

func (q Surveys) respondent(ctx context.Context, on store.Querier, sql string, args ...any) (store.Respondent, error) {
	r, err := svScanRespondent(on.QueryRow(ctx, sql, args...))
	if err != nil {
		return store.Respondent{}, fmt.Errorf("reading respondent: %w", err)
	}
	return r, nil
}

// Respondents implements store.Surveys.
func (q Surveys) Respondents(ctx context.Context, surveyID string, after *store.RespondentCursor, limit int) ([]store.Respondent, error) {
	sql := `SELECT ` + svRespondentColumns + ` FROM respondents WHERE survey_id = $1`
	args := []any{surveyID}
	if after != nil {
		sql += ` AND (created_at > $2 OR (created_at = $2 AND id > $3))`
		args = append(args, store.Micros(after.CreatedAt), after.ID)
	}
	sql += fmt.Sprintf(` ORDER BY created_at, id LIMIT $%d`, len(args)+1)
	args = append(args, limit)
	rows, err := q.Read.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("listing respondents: %w", err)
	}
	defer rows.Close()
	out := make([]store.Respondent, 0, max(0, min(limit, 1024)))
	for rows.Next() {
		r, err := svScanRespondent(rows)
		if err != nil {
			return nil, fmt.Errorf("listing respondents: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing respondents: %w", err)
	}
	return out, nil
}

// CreateRespondent implements store.Surveys.
func (q Surveys) CreateRespondent(ctx context.Context, r store.Respondent) error {
	_, err := q.Write.Exec(ctx, `INSERT INTO respondents (`+svRespondentColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, q.appendRespondentArgs(make([]any, 0, svRespondentCols), &r)...)
	if err != nil {
		return fmt.Errorf("creating respondent: %w", err)
	}
	return nil
}

// UpdateRespondent implements store.Surveys.
func (q Surveys) UpdateRespondent(ctx context.Context, r store.Respondent) error {
	n, err := q.Write.Exec(ctx, `UPDATE respondents SET name = $2, password_hash = $3, custom_fields = $4,
		disabled = $5, updated_at = $6 WHERE id = $1`,
		r.ID, r.Name, svNullString(r.PasswordHash), q.JSON(svEncodeFields(r.CustomFields)),
		r.Disabled, store.Micros(r.UpdatedAt))
	if err != nil {
		return fmt.Errorf("updating respondent: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("updating respondent: %w", store.ErrNotFound)
	}
	return nil
}

// SetRespondentProfile implements store.Surveys.
func (q Surveys) SetRespondentProfile(ctx context.Context, id, name string, fields []store.CustomField, now time.Time) error {
	n, err := q.Write.Exec(ctx, `UPDATE respondents SET name = $2, custom_fields = $3, updated_at = $4 WHERE id = $1`,
		id, name, q.JSON(svEncodeFields(fields)), store.Micros(now))
	if err != nil {
		return fmt.Errorf("updating respondent: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("updating respondent: %w", store.ErrNotFound)
	}
	return nil
}

// DeleteRespondent implements store.Surveys.
func (q Surveys) DeleteRespondent(ctx context.Context, surveyID, username string) (string, error) {
	var id string
	if err := q.Write.QueryRow(ctx, `DELETE FROM respondents WHERE survey_id = $1 AND username = $2 RETURNING id`,
		surveyID, username).Scan(&id); err != nil {
		return "", fmt.Errorf("deleting respondent: %w", err)
	}
	return id, nil
}

// ExistingRespondents implements store.Surveys: one statement per BatchRows×10
// usernames, as many as a write of BatchRows rows binds parameters.
func (q Surveys) ExistingRespondents(ctx context.Context, surveyID string, usernames []string) (map[string]store.ExistingRespondent, error) {
	out := make(map[string]store.ExistingRespondent)
	per := q.BatchRows * svRespondentCols
	for start := 0; start < len(usernames); start += per {
		if err := q.existingRespondents(ctx, surveyID, usernames[start:min(start+per, len(usernames))], out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (q Surveys) existingRespondents(ctx context.Context, surveyID string, usernames []string, out map[string]store.ExistingRespondent) error {
	const sel = `SELECT id, username, name, custom_fields FROM respondents WHERE survey_id = $1 AND username `
	var (
		rows store.Rows
		err  error
	)
	if q.UsernameArray {
		rows, err = q.Read.Query(ctx, sel+`= ANY($2)`, surveyID, usernames)
	} else {
		args := make([]any, 0, len(usernames)+1)
		args = append(args, surveyID)
		for _, u := range usernames {
			args = append(args, u)
		}
		rows, err = q.Read.Query(ctx, sel+`IN `+store.Placeholders(1, len(usernames), 2), args...)
	}
	if err != nil {
		return fmt.Errorf("reading existing respondents: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			username string
			e        store.ExistingRespondent
			raw      []byte
		)
		if err := rows.Scan(&e.ID, &username, &e.Name, &raw); err != nil {
			return fmt.Errorf("reading existing respondents: %w", err)
		}
		if e.CustomFields, err = svDecodeFields(raw); err != nil {
			return err
		}
		out[username] = e
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading existing respondents: %w", err)
	}
	return nil
}

// UpsertRespondents implements store.Surveys: one INSERT … ON CONFLICT per BatchRows rows.
func (q Surveys) UpsertRespondents(ctx context.Context, rows []store.Respondent) error {
	for start := 0; start < len(rows); start += q.BatchRows {
		batch := rows[start:min(start+q.BatchRows, len(rows))]
		args := make([]any, 0, len(batch)*svRespondentCols)
		for i := range batch {
			args = q.appendRespondentArgs(args, &batch[i])
		}
		sql := `INSERT INTO respondents (` + svRespondentColumns + `) VALUES ` + store.Placeholders(len(batch), svRespondentCols, 1) + `
		ON CONFLICT (survey_id, username) DO UPDATE SET
			name = excluded.name,
			password_hash = COALESCE(excluded.password_hash, respondents.password_hash),
			custom_fields = excluded.custom_fields,
			updated_at = excluded.updated_at`
		if _, err := q.Write.Exec(ctx, sql, args...); err != nil {
			return fmt.Errorf("writing respondents: %w", err)
		}
	}
	return nil
}

// WeakerHashCandidates implements store.Surveys.
func (q Surveys) WeakerHashCandidates(ctx context.Context, afterID, fullPrefix string, limit int) ([]store.RespondentHash, error) {
	rows, err := q.Read.Query(ctx, `SELECT id, password_hash FROM respondents
		WHERE id > $1 AND password_hash LIKE $2 AND password_hash NOT LIKE $3
		ORDER BY id LIMIT $4`, afterID, "$argon2id$%", fullPrefix+"%", limit)
	if err != nil {
		return nil, fmt.Errorf("reading weaker password hashes: %w", err)
	}
	defer rows.Close()
	var out []store.RespondentHash
	for rows.Next() {
		var r store.RespondentHash
		if err := rows.Scan(&r.ID, &r.PasswordHash); err != nil {
			return nil, fmt.Errorf("reading weaker password hashes: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading weaker password hashes: %w", err)
	}
	return out, nil
}

// SwapPasswordHash implements store.Surveys.
func (q Surveys) SwapPasswordHash(ctx context.Context, id, old, next string) (bool, error) {
	n, err := q.Write.Exec(ctx, `UPDATE respondents SET password_hash = $1 WHERE id = $2 AND password_hash = $3`, next, id, old)
	if err != nil {
		return false, fmt.Errorf("storing a password hash: %w", err)
	}
	return n > 0, nil
}

func svIsNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }
