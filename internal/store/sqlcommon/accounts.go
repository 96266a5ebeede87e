package sqlcommon

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/dispatch24/dispatch24/internal/store"
)

// Accounts implements store.Accounts in SQL both databases accept: reads on Read, writes on
// Write (the same transaction inside Driver.InTx).
type Accounts struct {
	Read, Write store.Querier
}

var _ store.Accounts = Accounts{}

// accountsChunk bounds the rows of one multi-row statement, well under both databases' parameter
// limits.
const accountsChunk = 500

const userColumns = "id, email, name, password_hash, roles, disabled, created_at, updated_at"

func scanUser(row store.Row) (store.User, error) {
	var (
		u                store.User
		roles            string
		created, updated int64
	)
	if err := row.Scan(&u.ID, &u.Email, &u.Name, &u.PasswordHash, &roles, &u.Disabled, &created, &updated); err != nil {
		return store.User{}, err
	}
	u.Roles = splitRoles(roles)
	u.Surveys = []string{}
	u.CreatedAt, u.UpdatedAt = store.FromMicros(created), store.FromMicros(updated)
	return u, nil
}

func splitRoles(s string) []string {
	out := []string{}
	for _, r := range strings.Split(s, ",") {
		if r = strings.TrimSpace(r); r != "" {
			out = append(out, r)
		}
	}
	return out
}

func joinRoles(roles []string) string { return strings.Join(roles, ",") }

// UserByEmail implements store.Accounts.
func (a Accounts) UserByEmail(ctx context.Context, email string) (store.User, error) {
	u, err := scanUser(a.Read.QueryRow(ctx, "SELECT "+userColumns+" FROM users WHERE email = $1", email))
	if err != nil {
		return store.User{}, fmt.Errorf("reading user by e-mail: %w", err)
	}
	return u, nil
}

// UserByID implements store.Accounts.
func (a Accounts) UserByID(ctx context.Context, id string) (store.User, error) {
	u, err := scanUser(a.Read.QueryRow(ctx, "SELECT "+userColumns+" FROM users WHERE id = $1", id))
	if err != nil {
		return store.User{}, fmt.Errorf("reading user %s: %w", id, err)
	}
	if u.Surveys, err = a.UserSurveys(ctx, id); err != nil {
		return store.User{}, err
	}
	return u, nil
}

// UserSurveys implements store.Accounts.
func (a Accounts) UserSurveys(ctx context.Context, id string) ([]string, error) {
	rows, err := a.Read.Query(ctx, "SELECT survey_id FROM user_surveys WHERE user_id = $1 ORDER BY survey_id", id)
	if err != nil {
		return nil, fmt.Errorf("reading surveys of user %s: %w", id, err)
	}
	defer rows.Close()
	out := []string{}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, fmt.Errorf("reading surveys of user %s: %w", id, err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading surveys of user %s: %w", id, err)
	}
	return out, nil
}

// Users implements store.Accounts.
func (a Accounts) Users(ctx context.Context) ([]store.User, error) {
	rows, err := a.Read.Query(ctx, "SELECT "+userColumns+" FROM users ORDER BY email")
	if err != nil {
		return nil, fmt.Errorf("listing users: %w", err)
	}
	users := []store.User{}
	idx := map[string]int{}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("listing users: %w", err)
		}
		idx[u.ID] = len(users)
		users = append(users, u)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing users: %w", err)
	}
	rows, err = a.Read.Query(ctx, "SELECT user_id, survey_id FROM user_surveys ORDER BY user_id, survey_id")
	if err != nil {
		return nil, fmt.Errorf("listing user surveys: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var uid, sid string
		if err := rows.Scan(&uid, &sid); err != nil {
			return nil, fmt.Errorf("listing user surveys: %w", err)
		}
		if i, ok := idx[uid]; ok {
			users[i].Surveys = append(users[i].Surveys, sid)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing user surveys: %w", err)
	}
	return users, nil
}

// UserAccess implements store.Accounts.
func (a Accounts) UserAccess(ctx context.Context, id string) (store.User, error) {
	u := store.User{ID: id}
	var roles string
	if err := a.Read.QueryRow(ctx, "SELECT email, roles, disabled FROM users WHERE id = $1", id).Scan(&u.Email, &roles, &u.Disabled); err != nil {
		return store.User{}, fmt.Errorf("reading user %s: %w", id, err)
	}
	u.Roles = splitRoles(roles)
	return u, nil
}

// InsertUser implements store.Accounts.
func (a Accounts) InsertUser(ctx context.Context, u store.User) error {
	_, err := a.Write.Exec(ctx, `INSERT INTO users (id, email, name, password_hash, roles, disabled, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		u.ID, u.Email, u.Name, u.PasswordHash, joinRoles(u.Roles), u.Disabled, store.Micros(u.CreatedAt), store.Micros(u.UpdatedAt))
	if err != nil {
		return fmt.Errorf("inserting user: %w", err)
	}
	return a.SetUserSurveys(ctx, u.ID, u.Surveys)
}

// UpdateUser implements store.Accounts.
func (a Accounts) UpdateUser(ctx context.Context, u store.User) error {
	n, err := a.Write.Exec(ctx, `UPDATE users SET email = $2, name = $3, password_hash = $4, roles = $5, disabled = $6, updated_at = $7
		WHERE id = $1`,
		u.ID, u.Email, u.Name, u.PasswordHash, joinRoles(u.Roles), u.Disabled, store.Micros(u.UpdatedAt))
	if err != nil {
		return fmt.Errorf("updating user %s: %w", u.ID, err)
	}
	if n == 0 {
		return fmt.Errorf("updating user %s: %w", u.ID, store.ErrNotFound)
	}
	return nil
}

// SetUserSurveys implements store.Accounts.
func (a Accounts) SetUserSurveys(ctx context.Context, id string, surveys []string) error {
	if _, err := a.Write.Exec(ctx, "DELETE FROM user_surveys WHERE user_id = $1", id); err != nil {
		return fmt.Errorf("replacing surveys of user %s: %w", id, err)
	}
	for part := range slices.Chunk(surveys, accountsChunk) {
		args := make([]any, 0, 2*len(part))
		for _, s := range part {
			args = append(args, id, s)
		}
		if _, err := a.Write.Exec(ctx, "INSERT INTO user_surveys (user_id, survey_id) VALUES "+store.Placeholders(len(part), 2, 1), args...); err != nil {
			return fmt.Errorf("replacing surveys of user %s: %w", id, err)
		}
	}
	return nil
}

// DeleteUser implements store.Accounts.
func (a Accounts) DeleteUser(ctx context.Context, id string) error {
	n, err := a.Write.Exec(ctx, "DELETE FROM users WHERE id = $1", id)
	if err != nil {
		return fmt.Errorf("deleting user %s: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("deleting user %s: %w", id, store.ErrNotFound)
	}
	return nil
}

// CountUsers implements store.Accounts.
func (a Accounts) CountUsers(ctx context.Context) (int, error) {
	var n int
	if err := a.Read.QueryRow(ctx, "SELECT count(*) FROM users").Scan(&n); err != nil {
		return 0, fmt.Errorf("counting users: %w", err)
	}
	return n, nil
}

// CountEnabledWithRole implements store.Accounts.
func (a Accounts) CountEnabledWithRole(ctx context.Context, role string) (int, error) {
	var n int
	err := a.Read.QueryRow(ctx, `SELECT count(*) FROM users WHERE disabled = $1 AND (',' || roles || ',') LIKE $2`,
		false, "%,"+role+",%").Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("counting enabled %s accounts: %w", role, err)
	}
	return n, nil
}
