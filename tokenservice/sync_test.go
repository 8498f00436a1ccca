package tokenservice

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestSyncAccountsIdempotent(t *testing.T) {
	ts := startService(t, nil, nil)
	ctx := context.Background()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "secrets"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "secrets", "bot.pw"), []byte("bot-password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	aliceHash, _ := HashPassword("alice-pw", cheapArgon2)
	doc := `
api_roots: [] # the core's part of the same file
accounts:
  - username: alice
    password_hash: "` + aliceHash + `"
    groups: [analysts, admins, analysts]
  - username: bot
    password_file: secrets/bot.pw
  - username: legacy
    password_hash: "` + werkzeugPBKDF2 + `"
    disabled: true
`
	var spec struct {
		Accounts []AccountSpec `yaml:"accounts"`
	}
	if err := yaml.Unmarshal([]byte(doc), &spec); err != nil {
		t.Fatal(err)
	}
	ts.addAccount(t, "stale", "pw")

	first, err := SyncAccounts(ctx, ts.pool, spec.Accounts, dir, false)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(first.Created, []string{"alice", "bot", "legacy"}) || len(first.Removed) != 0 {
		t.Errorf("first sync %+v", first)
	}
	second, err := SyncAccounts(ctx, ts.pool, spec.Accounts, dir, false)
	if err != nil {
		t.Fatal(err)
	}
	if second.Changed() || len(second.Unchanged) != 3 {
		t.Errorf("second sync changed something: %+v", second)
	}
	tokenFrom(t, ts.login(t, "alice", "alice-pw", ""))
	tokenFrom(t, ts.login(t, "bot", "bot-password", ""))
	if r := ts.login(t, "legacy", werkzeugPassword, ""); r.status != 401 {
		t.Errorf("disabled synced account: %d", r.status)
	}
	accounts, err := ListAccounts(ctx, ts.pool)
	if err != nil || len(accounts) != 4 || !slices.Equal(accounts[0].Groups, []string{"admins", "analysts"}) {
		t.Errorf("accounts %+v %v", accounts, err)
	}

	// A changed password file and groups update; prune deletes the rest.
	if err := os.WriteFile(filepath.Join(dir, "secrets", "bot.pw"), []byte("rotated\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	spec.Accounts[0].Groups = []string{"analysts"}
	third, err := SyncAccounts(ctx, ts.pool, spec.Accounts, dir, true)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(third.Updated, []string{"alice", "bot"}) || !slices.Equal(third.Removed, []string{"stale"}) {
		t.Errorf("third sync %+v", third)
	}
	tokenFrom(t, ts.login(t, "bot", "rotated", ""))
	if again, _ := SyncAccounts(ctx, ts.pool, spec.Accounts, dir, true); again.Changed() {
		t.Errorf("sync after prune not idempotent: %+v", again)
	}
}

func TestSyncAccountsRefusesBadSpecs(t *testing.T) {
	pool := migratedPool(t)
	ctx := context.Background()
	dir := t.TempDir()
	good := AccountSpec{Username: "ok", PasswordHash: werkzeugScrypt}
	cases := map[string][]AccountSpec{
		"plain password as hash": {{Username: "a", PasswordHash: "hunter2"}},
		"both hash and file":     {{Username: "a", PasswordHash: werkzeugScrypt, PasswordFile: "pw"}},
		"neither":                {{Username: "a"}},
		"missing file":           {{Username: "a", PasswordFile: "nope"}},
		"duplicate":              {good, good},
		"colon in username":      {{Username: "a:b", PasswordHash: werkzeugScrypt}},
		"comma in group":         {{Username: "a", PasswordHash: werkzeugScrypt, Groups: []string{"x,y"}}},
		"empty username":         {{PasswordHash: werkzeugScrypt}},
	}
	for name, specs := range cases {
		// A bad entry after a good one: nothing at all is written.
		if _, err := SyncAccounts(ctx, pool, append([]AccountSpec{good}, specs...), dir, true); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	accounts, _ := ListAccounts(ctx, pool)
	if len(accounts) != 0 {
		t.Errorf("refused syncs wrote %d accounts", len(accounts))
	}
}
