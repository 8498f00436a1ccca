package tokenservice

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Errors of the account functions.
var (
	ErrNoAccount     = errors.New("no such account")
	ErrAccountExists = errors.New("account already exists")
)

// Account is an account as the admin commands list it; the password hash
// is deliberately not part of it.
type Account struct {
	Username  string
	Groups    []string
	Disabled  bool
	NotBefore time.Time
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Length bounds on names, so that they fit in headers and log lines.
const (
	maxUsernameLen = 256
	maxGroupLen    = 128
	maxGroups      = 256
)

// ValidateUsername refuses names that Basic authentication or the identity
// headers could not carry: empty, over 256 bytes, not UTF-8, with a colon,
// control characters, or space at either end.
func ValidateUsername(name string) error {
	if err := validateName(name, maxUsernameLen); err != nil {
		return fmt.Errorf("username %q: %w", name, err)
	}
	if strings.Contains(name, ":") {
		return fmt.Errorf("username %q: a colon cannot be sent with Basic authentication", name)
	}
	return nil
}

// ValidateGroup refuses group names that X-Authenticated-Groups (a
// comma-separated list) could not carry: empty, with a comma, control
// characters or spaces at either end, over 128 bytes.
func ValidateGroup(name string) error {
	if err := validateName(name, maxGroupLen); err != nil {
		return fmt.Errorf("group %q: %w", name, err)
	}
	if strings.Contains(name, ",") {
		return fmt.Errorf("group %q: a comma would split it in X-Authenticated-Groups", name)
	}
	return nil
}

func validateName(name string, maxLen int) error {
	switch {
	case name == "":
		return errors.New("empty")
	case len(name) > maxLen:
		return fmt.Errorf("longer than %d bytes", maxLen)
	case !utf8.ValidString(name):
		return errors.New("not UTF-8")
	case strings.TrimSpace(name) != name:
		return errors.New("space at either end")
	case strings.ContainsFunc(name, unicode.IsControl):
		return errors.New("control character")
	}
	return nil
}

// normalizeGroups validates groups and returns them sorted without
// duplicates, so that comparisons (sync) and tokens are stable.
func normalizeGroups(groups []string) ([]string, error) {
	if len(groups) > maxGroups {
		return nil, fmt.Errorf("more than %d groups", maxGroups)
	}
	out := make([]string, 0, len(groups))
	for _, g := range groups {
		if err := ValidateGroup(g); err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// CreateAccount adds an account with an already computed password hash
// (HashPassword, or an imported bcrypt/Werkzeug hash).
func CreateAccount(ctx context.Context, pool *pgxpool.Pool, username, passwordHash string, groups []string) error {
	if err := ValidateUsername(username); err != nil {
		return err
	}
	if err := CheckPasswordHash(passwordHash); err != nil {
		return err
	}
	groups, err := normalizeGroups(groups)
	if err != nil {
		return err
	}
	_, err = pool.Exec(ctx, `INSERT INTO token_accounts (username, password_hash, groups) VALUES ($1, $2, $3)`,
		username, passwordHash, groups)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "23505" {
		return fmt.Errorf("creating account %s: %w", username, ErrAccountExists)
	}
	if err != nil {
		return fmt.Errorf("creating account %s: %w", username, err)
	}
	return nil
}

// SetPasswordHash replaces an account's password hash and moves not_before
// to now, which voids every token issued before (the revocation feed
// carries it to the gateways).
func SetPasswordHash(ctx context.Context, pool *pgxpool.Pool, username, passwordHash string) error {
	if err := CheckPasswordHash(passwordHash); err != nil {
		return err
	}
	return updateAccount(ctx, pool, "setting the password of", username,
		`UPDATE token_accounts SET password_hash = $2, not_before = clock_timestamp(), updated_at = clock_timestamp() WHERE username = $1`,
		passwordHash)
}

// SetGroups replaces an account's groups; they reach tokens issued from
// then on, and a change voids the tokens issued before (they carry the old
// groups).
func SetGroups(ctx context.Context, pool *pgxpool.Pool, username string, groups []string) error {
	groups, err := normalizeGroups(groups)
	if err != nil {
		return err
	}
	return updateAccount(ctx, pool, "setting the groups of", username,
		`UPDATE token_accounts SET groups = $2, updated_at = clock_timestamp() WHERE username = $1`, groups)
}

// SetDisabled disables or enables an account. Either moves not_before to
// now. A disabled account gets no tokens, and the tokens it holds are
// voided (the revocation feed carries it to the gateways).
func SetDisabled(ctx context.Context, pool *pgxpool.Pool, username string, disabled bool) error {
	verb := "enabling"
	if disabled {
		verb = "disabling"
	}
	return updateAccount(ctx, pool, verb, username,
		`UPDATE token_accounts SET disabled = $2, not_before = clock_timestamp(), updated_at = clock_timestamp() WHERE username = $1`,
		disabled)
}

// DeleteAccount removes an account and voids its tokens.
func DeleteAccount(ctx context.Context, pool *pgxpool.Pool, username string) error {
	return updateAccount(ctx, pool, "deleting", username, `DELETE FROM token_accounts WHERE username = $1 AND $2::boolean`, true)
}

func updateAccount(ctx context.Context, pool *pgxpool.Pool, doing, username, sql string, arg any) error {
	tag, err := pool.Exec(ctx, sql, username, arg)
	if err != nil {
		return fmt.Errorf("%s account %s: %w", doing, username, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%s account %s: %w", doing, username, ErrNoAccount)
	}
	return nil
}

// ListAccounts returns every account, by username.
func ListAccounts(ctx context.Context, pool *pgxpool.Pool) ([]Account, error) {
	rows, err := pool.Query(ctx, `SELECT username, groups, disabled, not_before, created_at, updated_at
		FROM token_accounts ORDER BY username`)
	if err != nil {
		return nil, fmt.Errorf("listing accounts: %w", err)
	}
	accounts, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Account, error) {
		var a Account
		err := row.Scan(&a.Username, &a.Groups, &a.Disabled, &a.NotBefore, &a.CreatedAt, &a.UpdatedAt)
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("listing accounts: %w", err)
	}
	return accounts, nil
}

// storedAccount is what a login needs.
type storedAccount struct {
	hash      string
	groups    []string
	disabled  bool
	notBefore time.Time
	version   int64 // goes into the token's account_version claim
}

// lookupAccount returns the account, or ok false when there is none.
func lookupAccount(ctx context.Context, pool *pgxpool.Pool, username string) (storedAccount, bool, error) {
	var a storedAccount
	err := pool.QueryRow(ctx, `SELECT password_hash, groups, disabled, not_before, version FROM token_accounts WHERE username = $1`,
		username).Scan(&a.hash, &a.groups, &a.disabled, &a.notBefore, &a.version)
	if errors.Is(err, pgx.ErrNoRows) {
		return a, false, nil
	}
	if err != nil {
		return a, false, fmt.Errorf("looking up account: %w", err)
	}
	return a, true, nil
}

// upgradeHash stores a re-hashed password unless the hash changed meanwhile
// (an admin set a new password during the login). Setting
// password_rehashed_at tells the table's trigger that the password itself
// did not change: not_before and password_source stay, nothing is voided.
func upgradeHash(ctx context.Context, pool *pgxpool.Pool, username, oldHash, newHash string) (bool, error) {
	tag, err := pool.Exec(ctx, `UPDATE token_accounts SET password_hash = $3, password_rehashed_at = clock_timestamp(),
		updated_at = clock_timestamp()
		WHERE username = $1 AND password_hash = $2`, username, oldHash, newHash)
	if err != nil {
		return false, fmt.Errorf("storing the upgraded hash: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}
