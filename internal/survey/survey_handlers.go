package survey

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/dispatch24/dispatch24/internal/httpapi"
	"github.com/dispatch24/dispatch24/internal/store"
)

// redirectJSON is a survey's redirect setting.
type redirectJSON struct {
	URL        string `json:"url"`
	Identifier string `json:"identifier"`
}

// surveyJSON is a survey as the API shows it: the jwtSecret only as jwtSecretSet.
type surveyJSON struct {
	ID                 string        `json:"id"`
	Name               string        `json:"name"`
	AllowGenUsers      bool          `json:"allowGenUsers"`
	JWTSecretSet       bool          `json:"jwtSecretSet"`
	Redirect           *redirectJSON `json:"redirect"`
	AuthURLTokenLength int           `json:"authUrlTokenLength"`
	CreatedAt          time.Time     `json:"createdAt"`
	UpdatedAt          time.Time     `json:"updatedAt"`
}

func toSurveyJSON(s *Survey) surveyJSON {
	out := surveyJSON{
		ID:                 s.ID,
		Name:               s.Name,
		AllowGenUsers:      s.AllowGenUsers,
		JWTSecretSet:       s.HasJWTSecret(),
		AuthURLTokenLength: s.AuthURLTokenLength,
		CreatedAt:          s.CreatedAt,
		UpdatedAt:          s.UpdatedAt,
	}
	if s.RedirectURL != "" {
		out.Redirect = &redirectJSON{URL: s.RedirectURL, Identifier: s.RedirectIdentifier}
	}
	return out
}

// createSurveyRequest is the body of POST /api/admin/surveys.
type createSurveyRequest struct {
	ID                 string        `json:"id"`
	Name               string        `json:"name"`
	AllowGenUsers      bool          `json:"allowGenUsers"`
	JWTSecret          *string       `json:"jwtSecret"`
	Redirect           *redirectJSON `json:"redirect"`
	AuthURLTokenLength *int          `json:"authUrlTokenLength"`
}

// errorList collects field errors of a request.
type errorList []httpapi.FieldError

func (l *errorList) add(field, msg string) {
	if msg != "" {
		*l = append(*l, httpapi.FieldError{Field: field, Message: msg})
	}
}

func (l *errorList) addAll(msgs []fieldMsg) {
	for _, m := range msgs {
		l.add(m.field, m.msg)
	}
}

func (l errorList) err() error {
	if len(l) == 0 {
		return nil
	}
	return httpapi.Validation(l...)
}

// applyRedirect validates and sets a redirect setting; nil or an empty url clears it.
func applyRedirect(s *Survey, r *redirectJSON, errs *errorList) {
	if r == nil || r.URL == "" {
		s.RedirectURL, s.RedirectIdentifier = "", ""
		return
	}
	if r.Identifier == "" {
		r.Identifier = IdentifierUsername
	}
	errs.add("redirect.url", checkRedirectURL(r.URL))
	errs.add("redirect.identifier", checkRedirectIdentifier(r.Identifier))
	s.RedirectURL, s.RedirectIdentifier = r.URL, r.Identifier
}

func (s *Service) handleCreateSurvey(w http.ResponseWriter, r *http.Request) error {
	var req createSurveyRequest
	if err := httpapi.DecodeJSON(w, r, 0, &req); err != nil {
		return err
	}
	now := s.now()
	sv := Survey{
		ID:                 req.ID,
		Name:               req.Name,
		AllowGenUsers:      req.AllowGenUsers,
		AuthURLTokenLength: DefaultAuthURLTokenLength,
		CreatedAt:          now,
		UpdatedAt:          now,
	}
	var errs errorList
	if !ValidSlug(req.ID) {
		errs.add("id", "must match ^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
	}
	if sv.Name == "" {
		sv.Name = sv.ID
	}
	errs.add("name", checkSurveyName(sv.Name))
	if req.JWTSecret != nil && *req.JWTSecret != "" {
		errs.add("jwtSecret", checkJWTSecret(*req.JWTSecret))
		sv.JWTSecret = *req.JWTSecret
	}
	applyRedirect(&sv, req.Redirect, &errs)
	if req.AuthURLTokenLength != nil {
		errs.add("authUrlTokenLength", checkAuthURLTokenLength(*req.AuthURLTokenLength))
		sv.AuthURLTokenLength = *req.AuthURLTokenLength
	}
	if err := errs.err(); err != nil {
		return err
	}
	if err := s.store.CreateSurvey(r.Context(), sv); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return httpapi.Conflict("survey_exists", "a survey with this id already exists")
		}
		return err
	}
	httpapi.WriteJSON(w, http.StatusCreated, toSurveyJSON(&sv))
	return nil
}

func (s *Service) handleListSurveys(w http.ResponseWriter, r *http.Request) error {
	all, ids := httpapi.PrincipalFrom(r.Context()).ManagedSurveys()
	list, err := s.store.Surveys(r.Context(), all, ids)
	if err != nil {
		return err
	}
	items := make([]surveyJSON, len(list))
	for i := range list {
		items[i] = toSurveyJSON(&list[i])
	}
	httpapi.WriteJSON(w, http.StatusOK, map[string]any{"items": items})
	return nil
}

// surveyNotFound is the 404 of every route of an unknown survey.
func surveyNotFound() error { return httpapi.NotFound("survey_not_found", "no such survey") }

// loadSurvey returns the route's survey or a 404 problem.
func (s *Service) loadSurvey(r *http.Request) (Survey, error) {
	sv, err := s.store.Survey(r.Context(), r.PathValue("surveyId"))
	if errors.Is(err, store.ErrNotFound) {
		return Survey{}, surveyNotFound()
	}
	return sv, err
}

func (s *Service) handleGetSurvey(w http.ResponseWriter, r *http.Request) error {
	sv, err := s.loadSurvey(r)
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, toSurveyJSON(&sv))
	return nil
}

// patchSurveyRequest is the body of PATCH …/surveys/{surveyId}. Fields are raw so that an
// absent field (unchanged) differs from null (cleared, for jwtSecret and redirect).
type patchSurveyRequest struct {
	ID                 json.RawMessage `json:"id"`
	Name               json.RawMessage `json:"name"`
	AllowGenUsers      json.RawMessage `json:"allowGenUsers"`
	JWTSecret          json.RawMessage `json:"jwtSecret"`
	Redirect           json.RawMessage `json:"redirect"`
	AuthURLTokenLength json.RawMessage `json:"authUrlTokenLength"`
}

func isNull(raw json.RawMessage) bool { return string(raw) == "null" }

// decodeField decodes a present, non-null raw field into dst, recording a type error.
func decodeField(raw json.RawMessage, dst any, field, want string, errs *errorList) bool {
	if err := json.Unmarshal(raw, dst); err != nil {
		errs.add(field, "must be "+want)
		return false
	}
	return true
}

func (s *Service) handlePatchSurvey(w http.ResponseWriter, r *http.Request) error {
	var req patchSurveyRequest
	if err := httpapi.DecodeJSON(w, r, 0, &req); err != nil {
		return err
	}
	id := r.PathValue("surveyId")
	sv, err := s.store.UpdateSurvey(r.Context(), id, s.now(), func(sv *Survey) error {
		var errs errorList
		if req.ID != nil {
			var v string
			if decodeField(req.ID, &v, "id", "a string", &errs) && v != sv.ID {
				errs.add("id", "cannot be changed")
			}
		}
		if req.Name != nil {
			if decodeField(req.Name, &sv.Name, "name", "a string", &errs) {
				errs.add("name", checkSurveyName(sv.Name))
			}
		}
		if req.AllowGenUsers != nil {
			decodeField(req.AllowGenUsers, &sv.AllowGenUsers, "allowGenUsers", "true or false", &errs)
		}
		if req.JWTSecret != nil {
			var v string
			if isNull(req.JWTSecret) {
				sv.JWTSecret, sv.JWTSecretSet = "", false
			} else if decodeField(req.JWTSecret, &v, "jwtSecret", "a string or null", &errs) {
				if v != "" {
					errs.add("jwtSecret", checkJWTSecret(v))
				}
				sv.JWTSecret, sv.JWTSecretSet = v, v != ""
			}
		}
		if req.Redirect != nil {
			var v *redirectJSON
			if decodeField(req.Redirect, &v, "redirect", "an object or null", &errs) {
				applyRedirect(sv, v, &errs)
			}
		}
		if req.AuthURLTokenLength != nil {
			if decodeField(req.AuthURLTokenLength, &sv.AuthURLTokenLength, "authUrlTokenLength", "an integer", &errs) {
				errs.add("authUrlTokenLength", checkAuthURLTokenLength(sv.AuthURLTokenLength))
			}
		}
		return errs.err()
	})
	if errors.Is(err, store.ErrNotFound) {
		return surveyNotFound()
	}
	if err != nil {
		return err
	}
	httpapi.WriteJSON(w, http.StatusOK, toSurveyJSON(&sv))
	return nil
}

// handleDeleteSurvey deletes a survey with everything in it. Admins only: see the package doc.
func (s *Service) handleDeleteSurvey(w http.ResponseWriter, r *http.Request) error {
	if !httpapi.PrincipalFrom(r.Context()).IsAdmin() {
		return httpapi.Forbidden("forbidden", "only admins may delete a survey")
	}
	err := s.store.DeleteSurvey(r.Context(), r.PathValue("surveyId"), s.now())
	if errors.Is(err, store.ErrNotFound) {
		return surveyNotFound()
	}
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
