package httpapi

import (
	"context"
	"net/http"
	"slices"
)

// Kind tells global accounts from survey respondents.
type Kind string

// The two kinds of account.
const (
	KindGlobal     Kind = "global"
	KindRespondent Kind = "respondent"
)

// The roles of CONTRACT section 3.
const (
	RoleAdmin      = "admin"
	RoleStaff      = "staff"
	RoleRespondent = "respondent"
)

// Principal is who a request acts for, set by the Authenticator.
type Principal struct {
	UserID string
	Kind   Kind
	Roles  []string
	// SurveyID is the respondent's survey.
	SurveyID string
	// Username is the respondent's username, or the global account's e-mail.
	Username string
	// Surveys are the surveys a staff account is assigned to.
	Surveys []string
	// TokenID is the access token's jti, or the personal access token's id.
	TokenID string
	// PAT is true when the request carried a personal access token.
	PAT bool
}

// HasRole reports whether the principal holds role.
func (p *Principal) HasRole(role string) bool { return p != nil && slices.Contains(p.Roles, role) }

// IsAdmin reports whether the principal is a global admin.
func (p *Principal) IsAdmin() bool { return p.Kind == KindGlobal && p.HasRole(RoleAdmin) }

// CanManageSurvey reports whether the principal may use the admin routes of surveyID: admins
// everywhere, staff on the surveys they are assigned to.
func (p *Principal) CanManageSurvey(surveyID string) bool {
	if p == nil || p.Kind != KindGlobal {
		return false
	}
	if p.HasRole(RoleAdmin) {
		return true
	}
	return p.HasRole(RoleStaff) && slices.Contains(p.Surveys, surveyID)
}

// ManagedSurveys returns nil for an admin (every survey) and the assigned surveys otherwise,
// for handlers that list across surveys.
func (p *Principal) ManagedSurveys() (all bool, surveys []string) {
	if p.IsAdmin() {
		return true, nil
	}
	if p.Kind == KindGlobal && p.HasRole(RoleStaff) {
		return false, p.Surveys
	}
	return false, nil
}

// Authenticator finds the principal of a request from its credentials (an access token in
// X-Auth-Token or Authorization: Bearer, or a personal access token). It returns (nil, nil)
// when the request carries no credentials and an error (a 401 *Problem) when they are bad.
type Authenticator interface {
	Authenticate(ctx context.Context, r *http.Request) (*Principal, error)
}

type principalKey struct{}

// WithPrincipal stores p in ctx.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the request's principal; nil on public routes.
func PrincipalFrom(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}
