package tokenservice

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/taxiway/taxiway/internal/syncreport"
)

// AccountState is one account as SyncAccounts should leave it. The
// password is given either as a hash or in plain text (hashed here with
// argon2id); exactly one of the two.
type AccountState struct {
	// Username is the login name (no colon, no control characters).
	Username string
	// PasswordHash is an argon2id PHC string, a bcrypt hash, or a hash
	// imported from OpenTAXII (Werkzeug pbkdf2: or scrypt:).
	PasswordHash string
	// Password is hashed with argon2id; an account whose stored hash still
	// verifies it is left unchanged.
	Password string
	// Groups are the account's groups, carried in its tokens.
	Groups []string
	// Disabled refuses the account tokens while keeping it.
	Disabled bool
}

// passwordSource is the fingerprint token_accounts.password_source keeps
// of the hash an admin gave (computed the same way by migration 0003's
// trigger).
func passwordSource(hash string) string {
	sum := sha256.Sum256([]byte(hash))
	return hex.EncodeToString(sum[:])
}

// SyncReport says what SyncAccounts changed, by username.
type SyncReport = syncreport.Report

// SyncAccounts makes the accounts table match accounts, in one transaction:
// creates missing accounts, updates those that differ, and with prune
// deletes accounts not listed. Every entry is checked before anything is
// written. Running it twice in a row reports no change the second time.
func SyncAccounts(ctx context.Context, pool *pgxpool.Pool, accounts []AccountState, prune bool) (SyncReport, error) {
	type wanted struct {
		spec   AccountState
		groups []string
	}
	var want []wanted
	seen := map[string]bool{}
	for i, a := range accounts {
		where := fmt.Sprintf("accounts[%d] (%s)", i, a.Username)
		if err := ValidateUsername(a.Username); err != nil {
			return SyncReport{}, fmt.Errorf("%s: %w", where, err)
		}
		if seen[a.Username] {
			return SyncReport{}, fmt.Errorf("%s: listed twice", where)
		}
		seen[a.Username] = true
		w := wanted{spec: a}
		if (a.PasswordHash == "") == (a.Password == "") {
			return SyncReport{}, fmt.Errorf("%s: give exactly one of a password hash and a password", where)
		}
		if a.PasswordHash != "" {
			if err := CheckPasswordHash(a.PasswordHash); err != nil {
				return SyncReport{}, fmt.Errorf("%s: password hash: %w", where, err)
			}
		}
		groups, err := normalizeGroups(a.Groups)
		if err != nil {
			return SyncReport{}, fmt.Errorf("%s: %w", where, err)
		}
		w.groups = groups
		want = append(want, w)
	}

	report := SyncReport{Component: Component}
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		report = SyncReport{Component: Component}
		// Serialise concurrent syncs so that they do not interleave.
		if _, err := tx.Exec(ctx, "LOCK TABLE token_accounts IN SHARE ROW EXCLUSIVE MODE"); err != nil {
			return err
		}
		type current struct {
			hash, source string
			groups       []string
			disabled     bool
		}
		have := map[string]current{}
		rows, err := tx.Query(ctx, "SELECT username, password_hash, password_source, groups, disabled FROM token_accounts")
		if err != nil {
			return err
		}
		for rows.Next() {
			var u string
			var c current
			if err := rows.Scan(&u, &c.hash, &c.source, &c.groups, &c.disabled); err != nil {
				rows.Close()
				return err
			}
			have[u] = c
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}

		for _, w := range want {
			name := w.spec.Username
			cur, exists := have[name]
			hash := w.spec.PasswordHash
			if exists && hash != "" && cur.source == passwordSource(hash) {
				// The stored hash is this one, or was derived from it by
				// a re-hash on login: the password is the file's.
				hash = cur.hash
			}
			if w.spec.Password != "" {
				if exists {
					if ok, _ := VerifyPassword(cur.hash, w.spec.Password); ok {
						hash = cur.hash // still right: keep it, no new salt
					}
				}
				if hash == "" {
					if hash, err = HashPassword(w.spec.Password, DefaultArgon2Params()); err != nil {
						return err
					}
				}
			}
			if !exists {
				if _, err := tx.Exec(ctx, `INSERT INTO token_accounts (username, password_hash, groups, disabled) VALUES ($1, $2, $3, $4)`,
					name, hash, w.groups, w.spec.Disabled); err != nil {
					return fmt.Errorf("creating account %s: %w", name, err)
				}
				report.Created = append(report.Created, name)
				continue
			}
			curGroups := slices.Clone(cur.groups)
			slices.Sort(curGroups)
			curGroups = slices.Compact(curGroups)
			if cur.hash == hash && slices.Equal(curGroups, w.groups) && cur.disabled == w.spec.Disabled {
				report.Unchanged = append(report.Unchanged, name)
				continue
			}
			// A new password moves not_before; that, a change of the
			// disabled flag or of the groups voids older tokens (the
			// token_accounts trigger publishes the revocation).
			voids := cur.hash != hash || cur.disabled != w.spec.Disabled
			if _, err := tx.Exec(ctx, `UPDATE token_accounts SET password_hash = $2, groups = $3, disabled = $4,
					not_before = CASE WHEN $5 THEN clock_timestamp() ELSE not_before END, updated_at = clock_timestamp()
				WHERE username = $1`, name, hash, w.groups, w.spec.Disabled, voids); err != nil {
				return fmt.Errorf("updating account %s: %w", name, err)
			}
			report.Updated = append(report.Updated, name)
		}
		if prune {
			for name := range have {
				if seen[name] {
					continue
				}
				if _, err := tx.Exec(ctx, `DELETE FROM token_accounts WHERE username = $1`, name); err != nil {
					return fmt.Errorf("deleting account %s: %w", name, err)
				}
				report.Removed = append(report.Removed, name)
			}
			slices.Sort(report.Removed)
		}
		return nil
	})
	if err != nil {
		return SyncReport{}, fmt.Errorf("syncing accounts: %w", err)
	}
	return report, nil
}
