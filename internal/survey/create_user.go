package survey

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/dispatch24/dispatch24/internal/httpapi"
	"github.com/dispatch24/dispatch24/internal/store"
)

// CreateUserAlgorithms are the only JWT algorithms a create-user token may use.
var CreateUserAlgorithms = []string{"HS256", "HS512"}

// createUserBodyLimit bounds the create-user body: a token with a few custom fields.
const createUserBodyLimit = 64 << 10

// UserClaims are the checked claims of a create-user token.
type UserClaims struct {
	Username    string
	Password    string // "" when absent: token sign-in only
	RedirectURL string
	// Name and CustomFields are nil when the claim is absent, so an existing respondent keeps
	// its values.
	Name         *string
	CustomFields []CustomField
}

// ParseUserToken verifies a create-user JWT with the survey's secret (HS256 or HS512 only,
// exp and nbf enforced when present) and checks its claims. Errors are *httpapi.Problem: 400
// malformed_token or validation_failed, 403 invalid_token or token_expired.
func ParseUserToken(token, secret string, now time.Time) (UserClaims, error) {
	parser := jwt.NewParser(
		jwt.WithValidMethods(CreateUserAlgorithms),
		jwt.WithTimeFunc(func() time.Time { return now }),
	)
	// Map claims first: every JSON object decodes, so a wrongly typed claim cannot answer
	// before the signature is checked.
	mc := jwt.MapClaims{}
	_, err := parser.ParseWithClaims(token, mc, func(*jwt.Token) (any, error) { return []byte(secret), nil })
	switch {
	case err == nil:
	case errors.Is(err, jwt.ErrTokenMalformed):
		return UserClaims{}, httpapi.BadRequest("malformed_token", "the token is not a well-formed JWT")
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return UserClaims{}, httpapi.Forbidden("invalid_token", "the token's signature or algorithm is not accepted (HS256 or HS512 with the survey's secret)")
	case errors.Is(err, jwt.ErrTokenExpired):
		return UserClaims{}, httpapi.Forbidden("token_expired", "the token has expired")
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return UserClaims{}, httpapi.Forbidden("invalid_token", "the token is not valid yet (nbf)")
	case errors.Is(err, jwt.ErrTokenInvalidClaims):
		return UserClaims{}, httpapi.Validation(httpapi.FieldError{Field: "exp", Message: "exp and nbf must be NumericDate numbers"})
	default:
		return UserClaims{}, httpapi.Forbidden("invalid_token", "the token is not accepted")
	}
	return checkUserClaims(mc)
}

// checkUserClaims turns verified map claims into UserClaims, listing every bad claim.
func checkUserClaims(mc jwt.MapClaims) (UserClaims, error) {
	var (
		c    UserClaims
		errs errorList
	)
	str := func(key string) (string, bool) {
		v, ok := mc[key]
		if !ok || v == nil {
			return "", false
		}
		s, isStr := v.(string)
		if !isStr {
			errs.add(key, "must be a string")
			return "", false
		}
		return s, true
	}
	if u, ok := str("username"); ok {
		c.Username = u
		errs.add("username", checkUsername(u))
	} else if _, present := mc["username"]; !present || mc["username"] == nil {
		errs.add("username", "is required")
	}
	if pw, ok := str("password"); ok && pw != "" {
		c.Password = pw
		errs.add("password", checkPassword(pw))
	}
	if ru, ok := str("redirectUrl"); ok && ru != "" {
		c.RedirectURL = ru
		errs.add("redirectUrl", checkAbsoluteURL(ru))
	}
	if name, ok := str("name"); ok {
		c.Name = &name
		errs.add("name", checkName(name))
	}
	if raw, ok := mc["customFields"]; ok && raw != nil {
		list, isList := raw.([]any)
		if !isList {
			errs.add("customFields", "must be an array of {name, value}")
		} else {
			c.CustomFields = make([]CustomField, 0, len(list))
			for i, item := range list {
				obj, isObj := item.(map[string]any)
				name, nameOK := obj["name"].(string)
				value, valueOK := obj["value"].(string)
				if !isObj || !nameOK || !valueOK {
					errs.add(fmt.Sprintf("customFields[%d]", i), "must be {name, value} with string name and value")
					continue
				}
				c.CustomFields = append(c.CustomFields, CustomField{Name: name, Value: value})
			}
			errs.addAll(checkCustomFields("customFields", c.CustomFields))
		}
	}
	if err := errs.err(); err != nil {
		return UserClaims{}, err
	}
	return c, nil
}

// CreatedUser is the outcome of account creation by JWT.
type CreatedUser struct {
	Respondent  Respondent
	RedirectURL string
	// Created is false when the username already had an account.
	Created bool
}

// CreateUser is account creation by JWT (seed 000): it verifies token with the survey's
// jwtSecret and returns the respondent named by its username claim, creating it if needed.
// The same username again returns the same account and auth token (its name and custom
// fields updated from the claims, its password never changed); concurrent calls for one
// username create exactly one account, through the unique (survey, username) constraint.
// Errors the caller should show are *httpapi.Problem.
func (s *Service) CreateUser(ctx context.Context, surveyID, token string) (CreatedUser, error) {
	sv, err := s.store.SurveyWithSecret(ctx, surveyID)
	if errors.Is(err, store.ErrNotFound) {
		return CreatedUser{}, surveyNotFound()
	}
	if err != nil {
		return CreatedUser{}, err
	}
	if !sv.CanGenerateUsers() {
		return CreatedUser{}, httpapi.Forbidden("user_generation_disabled", "this survey does not accept create-user tokens")
	}
	claims, err := ParseUserToken(token, sv.JWTSecret, s.cfg.NowFunc())
	if err != nil {
		return CreatedUser{}, err
	}
	var hash string
	for attempt := 0; ; attempt++ {
		r, err := s.store.Respondent(ctx, sv.ID, claims.Username)
		if err == nil {
			if r.Disabled {
				return CreatedUser{}, httpapi.Forbidden("respondent_disabled", "this respondent's account is disabled")
			}
			if err := s.refreshProfile(ctx, &r, &claims); err != nil {
				return CreatedUser{}, err
			}
			return CreatedUser{Respondent: r, RedirectURL: claims.RedirectURL}, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return CreatedUser{}, err
		}
		if attempt >= 3 {
			// Inserts keep conflicting while no row is found: not a race we lose, a fault.
			return CreatedUser{}, fmt.Errorf("creating a respondent in survey %s: inserts conflict but no row is found", sv.ID)
		}
		if claims.Password != "" && hash == "" {
			if hash, err = s.hashPassword(ctx, claims.Password); err != nil {
				return CreatedUser{}, err
			}
		}
		now := s.now()
		r = Respondent{
			ID:           newRespondentID(),
			SurveyID:     sv.ID,
			Username:     claims.Username,
			PasswordHash: hash,
			CustomFields: claims.CustomFields,
			CreatedAt:    now,
			UpdatedAt:    now,
		}
		if claims.Name != nil {
			r.Name = *claims.Name
		}
		if r.AuthToken, err = NewAuthToken(sv.AuthURLTokenLength); err != nil {
			return CreatedUser{}, err
		}
		err = s.store.CreateRespondent(ctx, &r)
		if err == nil {
			return CreatedUser{Respondent: r, RedirectURL: claims.RedirectURL, Created: true}, nil
		}
		if !errors.Is(err, store.ErrConflict) {
			return CreatedUser{}, err
		}
		// Another call created the username first: read its row on the next turn.
	}
}

// refreshProfile applies the name and custom field claims to an existing respondent, writing
// only when something changes.
func (s *Service) refreshProfile(ctx context.Context, r *Respondent, c *UserClaims) error {
	changed := false
	if c.Name != nil && *c.Name != r.Name {
		r.Name = *c.Name
		changed = true
	}
	if len(c.CustomFields) > 0 {
		merged := mergeCustomFields(r.CustomFields, c.CustomFields)
		if !sameFields(merged, r.CustomFields) {
			r.CustomFields = merged
			changed = true
		}
	}
	if !changed {
		return nil
	}
	return s.store.setRespondentProfile(ctx, r, s.now())
}

func sameFields(a, b []CustomField) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// createUserResponse is the answer of POST /api/surveys/{surveyId}/create-user.
type createUserResponse struct {
	UserID       string        `json:"userId"`
	Username     string        `json:"username"`
	AuthToken    string        `json:"authToken"`
	AuthURL      string        `json:"authUrl"`
	ShortAuthURL string        `json:"shortAuthUrl"`
	RedirectURL  string        `json:"redirectUrl,omitempty"`
	Name         string        `json:"name,omitempty"`
	CustomFields []CustomField `json:"customFields,omitempty"`
}

func (s *Service) handleCreateUser(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Token *string `json:"token"`
	}
	if err := httpapi.DecodeJSON(w, r, createUserBodyLimit, &req); err != nil {
		return err
	}
	if req.Token == nil || *req.Token == "" {
		return httpapi.Validation(httpapi.FieldError{Field: "token", Message: "is required"})
	}
	cu, err := s.CreateUser(r.Context(), r.PathValue("surveyId"), *req.Token)
	if err != nil {
		return err
	}
	resp := &cu.Respondent
	authURL, short := AuthURLs(s.cfg.SurveyAppURL, resp.SurveyID, resp.AuthToken)
	w.Header().Set("Cache-Control", "no-store")
	httpapi.WriteJSON(w, http.StatusOK, createUserResponse{
		UserID:       resp.ID,
		Username:     resp.Username,
		AuthToken:    resp.AuthToken,
		AuthURL:      authURL,
		ShortAuthURL: short,
		RedirectURL:  cu.RedirectURL,
		Name:         resp.Name,
		CustomFields: resp.CustomFields,
	})
	return nil
}

// handleCreateUserRedirect is option B: a browser arrives with the token in the path and is
// sent on with 303 to its authUrl, or to the survey app with ?error=<code>. It never returns
// an error to the router, whose error log would name the path, and with it the token.
func (s *Service) handleCreateUserRedirect(w http.ResponseWriter, r *http.Request) error {
	surveyID := r.PathValue("surveyId")
	// The token must not travel on in a Referer header nor sit in a cache.
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.Header().Set("Cache-Control", "no-store")
	cu, err := s.CreateUser(r.Context(), surveyID, r.PathValue("token"))
	if err != nil {
		code := "internal"
		var p *httpapi.Problem
		if errors.As(err, &p) {
			code = p.Code
		} else {
			s.logger.ErrorContext(r.Context(), "create-user redirect failed", "survey", surveyID,
				"request_id", httpapi.RequestID(r.Context()), "err", err)
		}
		http.Redirect(w, r, s.cfg.SurveyAppURL+"/"+url.PathEscape(surveyID)+"?error="+url.QueryEscape(code), http.StatusSeeOther)
		return nil
	}
	authURL, _ := AuthURLs(s.cfg.SurveyAppURL, cu.Respondent.SurveyID, cu.Respondent.AuthToken)
	http.Redirect(w, r, authURL, http.StatusSeeOther)
	return nil
}
