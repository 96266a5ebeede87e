package survey

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/dispatch24/dispatch24/internal/httpapi"
	"github.com/dispatch24/dispatch24/internal/store"
)

// Page sizes of the respondent list.
const (
	DefaultPageSize = 50
	MaxPageSize     = 1000
)

// respondentJSON is a respondent as the admin API shows it; never the password hash.
type respondentJSON struct {
	UserID       string        `json:"userId"`
	Username     string        `json:"username"`
	AuthToken    string        `json:"authToken"`
	AuthURL      string        `json:"authUrl"`
	ShortAuthURL string        `json:"shortAuthUrl"`
	Name         string        `json:"name"`
	CustomFields []CustomField `json:"customFields"`
	PasswordSet  bool          `json:"passwordSet"`
	Disabled     bool          `json:"disabled"`
	CreatedAt    time.Time     `json:"createdAt"`
	UpdatedAt    time.Time     `json:"updatedAt"`
}

func (s *Service) toRespondentJSON(r *Respondent) respondentJSON {
	authURL, short := AuthURLs(s.cfg.SurveyAppURL, r.SurveyID, r.AuthToken)
	fields := r.CustomFields
	if fields == nil {
		fields = []CustomField{}
	}
	return respondentJSON{
		UserID:       r.ID,
		Username:     r.Username,
		AuthToken:    r.AuthToken,
		AuthURL:      authURL,
		ShortAuthURL: short,
		Name:         r.Name,
		CustomFields: fields,
		PasswordSet:  r.PasswordHash != "",
		Disabled:     r.Disabled,
		CreatedAt:    r.CreatedAt,
		UpdatedAt:    r.UpdatedAt,
	}
}

// createRespondentRequest is the body of POST …/respondents.
type createRespondentRequest struct {
	Username     string        `json:"username"`
	Password     *string       `json:"password"`
	Name         string        `json:"name"`
	CustomFields []CustomField `json:"customFields"`
}

func (s *Service) handleCreateRespondent(w http.ResponseWriter, r *http.Request) error {
	var req createRespondentRequest
	if err := httpapi.DecodeJSON(w, r, 0, &req); err != nil {
		return err
	}
	var errs errorList
	errs.add("username", checkUsername(req.Username))
	if req.Password != nil && *req.Password != "" {
		errs.add("password", checkPassword(*req.Password))
	}
	errs.add("name", checkName(req.Name))
	errs.addAll(checkCustomFields("customFields", req.CustomFields))
	if err := errs.err(); err != nil {
		return err
	}
	sv, err := s.loadSurvey(r)
	if err != nil {
		return err
	}
	var hash string
	if req.Password != nil && *req.Password != "" {
		if hash, err = s.hashPassword(r.Context(), *req.Password); err != nil {
			return err
		}
	}
	now := s.now()
	resp := Respondent{
		SurveyID:     sv.ID,
		Username:     req.Username,
		Name:         req.Name,
		PasswordHash: hash,
		CustomFields: req.CustomFields,
		CreatedAt:    now,
		UpdatedAt:    now,
	}
	for attempt := 0; ; attempt++ {
		resp.ID = newRespondentID()
		if resp.AuthToken, err = NewAuthToken(sv.AuthURLTokenLength); err != nil {
			return err
		}
		err = s.store.CreateRespondent(r.Context(), &resp)
		if err == nil {
			break
		}
		if !errors.Is(err, store.ErrConflict) {
			return err
		}
		// The username is taken, or (once in 2^71 tries or more) the auth token is.
		if _, rerr := s.store.Respondent(r.Context(), sv.ID, req.Username); rerr == nil || attempt >= 2 {
			return httpapi.Conflict("respondent_exists", "a respondent with this username already exists")
		}
	}
	w.Header().Set("Location", "/api/admin/surveys/"+sv.ID+"/respondents/"+url.PathEscape(resp.Username))
	httpapi.WriteJSON(w, http.StatusCreated, s.toRespondentJSON(&resp))
	return nil
}

// respondentNotFound is the 404 of an unknown username.
func respondentNotFound() error {
	return httpapi.NotFound("respondent_not_found", "no such respondent")
}

// errSurveyOrRespondent tells a missing survey from a missing respondent for a 404.
func (s *Service) errSurveyOrRespondent(ctx context.Context, surveyID string, err error) error {
	if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if _, serr := s.store.Survey(ctx, surveyID); errors.Is(serr, store.ErrNotFound) {
		return surveyNotFound()
	}
	return respondentNotFound()
}

func (s *Service) handleGetRespondent(w http.ResponseWriter, r *http.Request) error {
	surveyID := r.PathValue("surveyId")
	resp, err := s.store.Respondent(r.Context(), surveyID, r.PathValue("username"))
	if err != nil {
		return s.errSurveyOrRespondent(r.Context(), surveyID, err)
	}
	httpapi.WriteJSON(w, http.StatusOK, s.toRespondentJSON(&resp))
	return nil
}

// patchRespondentRequest is the body of PATCH …/respondents/{username}: absent fields stay;
// password null removes the password (token sign-in only); customFields replaces the list.
type patchRespondentRequest struct {
	Username     json.RawMessage `json:"username"`
	Name         json.RawMessage `json:"name"`
	Password     json.RawMessage `json:"password"`
	CustomFields json.RawMessage `json:"customFields"`
	Disabled     json.RawMessage `json:"disabled"`
}

func (s *Service) handlePatchRespondent(w http.ResponseWriter, r *http.Request) error {
	var req patchRespondentRequest
	if err := httpapi.DecodeJSON(w, r, 0, &req); err != nil {
		return err
	}
	// Validate and hash before the transaction, so the row lock is not held while hashing.
	var (
		errs     errorList
		name     string
		pw       string
		fields   []CustomField
		disabled bool
		username = r.PathValue("username")
	)
	if req.Username != nil {
		var v string
		if decodeField(req.Username, &v, "username", "a string", &errs) && v != username {
			errs.add("username", "cannot be changed")
		}
	}
	if req.Name != nil && decodeField(req.Name, &name, "name", "a string", &errs) {
		errs.add("name", checkName(name))
	}
	if req.Password != nil && !isNull(req.Password) && decodeField(req.Password, &pw, "password", "a string or null", &errs) && pw != "" {
		errs.add("password", checkPassword(pw))
	}
	if req.CustomFields != nil && decodeField(req.CustomFields, &fields, "customFields", "an array of {name, value}", &errs) {
		errs.addAll(checkCustomFields("customFields", fields))
	}
	if req.Disabled != nil {
		decodeField(req.Disabled, &disabled, "disabled", "true or false", &errs)
	}
	if err := errs.err(); err != nil {
		return err
	}
	var hash string
	if pw != "" {
		var err error
		if hash, err = s.hashPassword(r.Context(), pw); err != nil {
			return err
		}
	}
	surveyID := r.PathValue("surveyId")
	resp, err := s.store.UpdateRespondent(r.Context(), surveyID, username, s.now(), func(resp *Respondent) error {
		if req.Name != nil {
			resp.Name = name
		}
		if req.Password != nil {
			resp.PasswordHash = hash // "" for null or "": no password
		}
		if req.CustomFields != nil {
			resp.CustomFields = fields
		}
		if req.Disabled != nil {
			resp.Disabled = disabled
		}
		return nil
	})
	if err != nil {
		return s.errSurveyOrRespondent(r.Context(), surveyID, err)
	}
	httpapi.WriteJSON(w, http.StatusOK, s.toRespondentJSON(&resp))
	return nil
}

func (s *Service) handleDeleteRespondent(w http.ResponseWriter, r *http.Request) error {
	surveyID := r.PathValue("surveyId")
	if err := s.store.DeleteRespondent(r.Context(), surveyID, r.PathValue("username"), s.now()); err != nil {
		return s.errSurveyOrRespondent(r.Context(), surveyID, err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// encodeCursor makes the opaque cursor that follows row r.
func encodeCursor(r *Respondent) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(store.Micros(r.CreatedAt), 10) + ":" + r.ID))
}

// decodeCursor reads a cursor made by encodeCursor.
func decodeCursor(s string) (*Cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, errors.New("not a cursor")
	}
	ts, id, ok := strings.Cut(string(b), ":")
	// The id goes to the store: NUL or invalid UTF-8 would be a 500 there, not a bad cursor.
	if !ok || id == "" || !httpapi.ValidText(id) {
		return nil, errors.New("not a cursor")
	}
	us, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return nil, errors.New("not a cursor")
	}
	return &Cursor{CreatedAt: store.FromMicros(us), ID: id}, nil
}

// parseLimit reads ?limit=: DefaultPageSize when absent, at most MaxPageSize (larger values
// are cut down, as list APIs commonly do).
func parseLimit(raw string) (int, error) {
	if raw == "" {
		return DefaultPageSize, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 1 {
		return 0, httpapi.Validation(httpapi.FieldError{Field: "limit", Message: "must be a positive integer"})
	}
	return min(n, MaxPageSize), nil
}

func (s *Service) handleListRespondents(w http.ResponseWriter, r *http.Request) error {
	limit, err := parseLimit(r.URL.Query().Get("limit"))
	if err != nil {
		return err
	}
	var after *Cursor
	if c := r.URL.Query().Get("cursor"); c != "" {
		if after, err = decodeCursor(c); err != nil {
			return httpapi.BadRequest("invalid_cursor", "the cursor is not one this API returned")
		}
	}
	sv, err := s.loadSurvey(r)
	if err != nil {
		return err
	}
	// One more row than asked tells whether another page follows.
	list, err := s.store.Respondents(r.Context(), sv.ID, after, limit+1)
	if err != nil {
		return err
	}
	var next *string
	if len(list) > limit {
		list = list[:limit]
		c := encodeCursor(&list[limit-1])
		next = &c
	}
	items := make([]respondentJSON, len(list))
	for i := range list {
		items[i] = s.toRespondentJSON(&list[i])
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"items": items, "nextCursor": next})
	return nil
}
