package auth

import (
	"time"

	"github.com/dispatch24/dispatch24/internal/store"
)

// The kinds of account a refresh token belongs to (refresh_tokens.user_kind).
const (
	kindGlobal     = store.AccountGlobal
	kindRespondent = store.AccountRespondent
)

// PersonalAccessToken is a personal access token as listed; the token itself is shown only
// when it is created.
type PersonalAccessToken struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	ExpiresAt  time.Time  `json:"expiresAt"`
	CreatedAt  time.Time  `json:"createdAt"`
	LastUsedAt *time.Time `json:"lastUsedAt"`
}

func publicPAT(p store.PersonalAccessToken) PersonalAccessToken {
	out := PersonalAccessToken{ID: p.ID, Name: p.Name, ExpiresAt: p.ExpiresAt, CreatedAt: p.CreatedAt}
	if !p.LastUsedAt.IsZero() {
		t := p.LastUsedAt
		out.LastUsedAt = &t
	}
	return out
}
