package auth

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dispatch24/dispatch24/internal/httpapi"
	"github.com/dispatch24/dispatch24/internal/store"
)

// User is a global account as the admin routes show it. The password hash never leaves the
// store layer: it lives in userRow only.
type User struct {
	ID        string    `json:"id"`
	Email     string    `json:"email"`
	Name      string    `json:"name"`
	Roles     []string  `json:"roles"`
	Surveys   []string  `json:"surveys"`
	Disabled  bool      `json:"disabled"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// userRow is a users row with its password hash.
type userRow struct {
	User
	passwordHash string
}

const userColumns = "id, email, name, password_hash, roles, disabled, created_at, updated_at"

func scanUser(row store.Row) (*userRow, error) {
	var (
		u                userRow
		roles            string
		created, updated int64
	)
	if err := row.Scan(&u.ID, &u.Email, &u.Name, &u.passwordHash, &roles, &u.Disabled, &created, &updated); err != nil {
		return nil, err
	}
	u.Roles = splitRoles(roles)
	u.Surveys = []string{}
	u.CreatedAt, u.UpdatedAt = store.FromMicros(created), store.FromMicros(updated)
	return &u, nil
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

// userByEmail reads an account by its lower-cased e-mail.
func userByEmail(ctx context.Context, q store.Querier, email string) (*userRow, error) {
	u, err := scanUser(q.QueryRow(ctx, "SELECT "+userColumns+" FROM users WHERE email = $1", email))
	if err != nil {
		return nil, fmt.Errorf("reading user by e-mail: %w", err)
	}
	return u, nil
}

// userByID reads an account with its survey assignments.
func userByID(ctx context.Context, q store.Querier, id string) (*userRow, error) {
	u, err := scanUser(q.QueryRow(ctx, "SELECT "+userColumns+" FROM users WHERE id = $1", id))
	if err != nil {
		return nil, fmt.Errorf("reading user %s: %w", id, err)
	}
	if u.Surveys, err = userSurveys(ctx, q, id); err != nil {
		return nil, err
	}
	return u, nil
}

func userSurveys(ctx context.Context, q store.Querier, id string) ([]string, error) {
	rows, err := q.Query(ctx, "SELECT survey_id FROM user_surveys WHERE user_id = $1 ORDER BY survey_id", id)
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

// listUsers returns every global account with its surveys, ordered by e-mail.
func listUsers(ctx context.Context, q store.Querier) ([]User, error) {
	rows, err := q.Query(ctx, "SELECT "+userColumns+" FROM users ORDER BY email")
	if err != nil {
		return nil, fmt.Errorf("listing users: %w", err)
	}
	var users []User
	idx := map[string]int{}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("listing users: %w", err)
		}
		idx[u.ID] = len(users)
		users = append(users, u.User)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing users: %w", err)
	}
	rows, err = q.Query(ctx, "SELECT user_id, survey_id FROM user_surveys ORDER BY user_id, survey_id")
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
	if users == nil {
		users = []User{}
	}
	return users, nil
}

// insertUser writes a new account and its survey assignments; store.ErrConflict when the
// e-mail is taken.
func insertUser(ctx context.Context, q store.Querier, u *userRow) error {
	_, err := q.Exec(ctx, `INSERT INTO users (id, email, name, password_hash, roles, disabled, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		u.ID, u.Email, u.Name, u.passwordHash, joinRoles(u.Roles), u.Disabled, store.Micros(u.CreatedAt), store.Micros(u.UpdatedAt))
	if err != nil {
		return fmt.Errorf("inserting user: %w", err)
	}
	return setUserSurveys(ctx, q, u.ID, u.Surveys)
}

// updateUser writes every column of an existing account except created_at.
func updateUser(ctx context.Context, q store.Querier, u *userRow) error {
	n, err := q.Exec(ctx, `UPDATE users SET email = $2, name = $3, password_hash = $4, roles = $5, disabled = $6, updated_at = $7
		WHERE id = $1`,
		u.ID, u.Email, u.Name, u.passwordHash, joinRoles(u.Roles), u.Disabled, store.Micros(u.UpdatedAt))
	if err != nil {
		return fmt.Errorf("updating user %s: %w", u.ID, err)
	}
	if n == 0 {
		return fmt.Errorf("updating user %s: %w", u.ID, store.ErrNotFound)
	}
	return nil
}

// setUserSurveys replaces the account's survey assignments.
func setUserSurveys(ctx context.Context, q store.Querier, id string, surveys []string) error {
	if _, err := q.Exec(ctx, "DELETE FROM user_surveys WHERE user_id = $1", id); err != nil {
		return fmt.Errorf("replacing surveys of user %s: %w", id, err)
	}
	for chunk := range slices.Chunk(surveys, 500) {
		args := make([]any, 0, 2*len(chunk))
		for _, s := range chunk {
			args = append(args, id, s)
		}
		if _, err := q.Exec(ctx, "INSERT INTO user_surveys (user_id, survey_id) VALUES "+store.Placeholders(len(chunk), 2, 1), args...); err != nil {
			return fmt.Errorf("replacing surveys of user %s: %w", id, err)
		}
	}
	return nil
}

// deleteUser deletes an account; its assignments and personal access tokens go with it.
func deleteUser(ctx context.Context, q store.Querier, id string) error {
	n, err := q.Exec(ctx, "DELETE FROM users WHERE id = $1", id)
	if err != nil {
		return fmt.Errorf("deleting user %s: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("deleting user %s: %w", id, store.ErrNotFound)
	}
	return nil
}

// countEnabledAdmins counts the accounts that can still administer the system.
func countEnabledAdmins(ctx context.Context, q store.Querier) (int, error) {
	var n int
	err := q.QueryRow(ctx, `SELECT count(*) FROM users WHERE disabled = $1 AND (',' || roles || ',') LIKE '%,admin,%'`, false).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("counting admins: %w", err)
	}
	return n, nil
}

// countUsers counts the global accounts.
func countUsers(ctx context.Context, q store.Querier) (int, error) {
	var n int
	if err := q.QueryRow(ctx, "SELECT count(*) FROM users").Scan(&n); err != nil {
		return 0, fmt.Errorf("counting users: %w", err)
	}
	return n, nil
}

// missingSurveys returns the ids among ids that name no survey.
func missingSurveys(ctx context.Context, q store.Querier, ids []string) ([]string, error) {
	found := map[string]bool{}
	for chunk := range slices.Chunk(ids, 500) {
		args := make([]any, len(chunk))
		ph := make([]string, len(chunk))
		for i, id := range chunk {
			args[i] = id
			ph[i] = fmt.Sprintf("$%d", i+1)
		}
		rows, err := q.Query(ctx, "SELECT id FROM surveys WHERE id IN ("+strings.Join(ph, ",")+")", args...)
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

// globalAccount is what authenticating a request needs of a global account.
type globalAccount struct {
	Email    string
	Roles    []string
	Disabled bool
	Surveys  []string
}

// loadGlobalAccount reads an account's current roles, state and, for staff, assignments.
func loadGlobalAccount(ctx context.Context, q store.Querier, id string) (*globalAccount, error) {
	var (
		a     globalAccount
		roles string
	)
	if err := q.QueryRow(ctx, "SELECT email, roles, disabled FROM users WHERE id = $1", id).Scan(&a.Email, &roles, &a.Disabled); err != nil {
		return nil, fmt.Errorf("reading user %s: %w", id, err)
	}
	a.Roles = splitRoles(roles)
	if slices.Contains(a.Roles, httpapi.RoleStaff) && !slices.Contains(a.Roles, httpapi.RoleAdmin) {
		var err error
		if a.Surveys, err = userSurveys(ctx, q, id); err != nil {
			return nil, err
		}
	}
	return &a, nil
}
