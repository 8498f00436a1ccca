package tokenservice

import (
	"context"
	"slices"
	"strings"
	"testing"
)

func TestSyncAccountsIdempotent(t *testing.T) {
	ts := startService(t, nil, nil)
	ctx := context.Background()
	aliceHash, _ := HashPassword("alice-pw", cheapArgon2)
	want := []AccountState{
		{Username: "alice", PasswordHash: aliceHash, Groups: []string{"analysts", "admins", "analysts"}},
		{Username: "bot", Password: "bot-password"},
		{Username: "legacy", PasswordHash: werkzeugPBKDF2, Disabled: true},
	}
	ts.addAccount(t, "stale", "pw")

	first, err := SyncAccounts(ctx, ts.pool, want, false)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(first.Created, []string{"alice", "bot", "legacy"}) || len(first.Removed) != 0 {
		t.Errorf("first sync %+v", first)
	}
	second, err := SyncAccounts(ctx, ts.pool, want, false)
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

	// A changed password and groups update; prune deletes the rest.
	want[1].Password = "rotated"
	want[0].Groups = []string{"analysts"}
	third, err := SyncAccounts(ctx, ts.pool, want, true)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(third.Updated, []string{"alice", "bot"}) || !slices.Equal(third.Removed, []string{"stale"}) {
		t.Errorf("third sync %+v", third)
	}
	tokenFrom(t, ts.login(t, "bot", "rotated", ""))
	if again, _ := SyncAccounts(ctx, ts.pool, want, true); again.Changed() {
		t.Errorf("sync after prune not idempotent: %+v", again)
	}
}

func TestSyncAccountsRefusesBadSpecs(t *testing.T) {
	pool := migratedPool(t)
	ctx := context.Background()
	good := AccountState{Username: "ok", PasswordHash: werkzeugScrypt}
	cases := map[string][]AccountState{
		"plain password as hash": {{Username: "a", PasswordHash: "hunter2"}},
		"both hash and password": {{Username: "a", PasswordHash: werkzeugScrypt, Password: "pw"}},
		"neither":                {{Username: "a"}},
		"duplicate":              {good, good},
		"colon in username":      {{Username: "a:b", PasswordHash: werkzeugScrypt}},
		"comma in group":         {{Username: "a", PasswordHash: werkzeugScrypt, Groups: []string{"x,y"}}},
		"empty username":         {{PasswordHash: werkzeugScrypt}},
	}
	for name, specs := range cases {
		// A bad entry after a good one: nothing at all is written.
		if _, err := SyncAccounts(ctx, pool, append([]AccountState{good}, specs...), true); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	accounts, _ := ListAccounts(ctx, pool)
	if len(accounts) != 0 {
		t.Errorf("refused syncs wrote %d accounts", len(accounts))
	}
}

// TestSyncKeepsUpgradedHashes: an account imported with a Werkzeug pbkdf2
// hash, and one with an Argon2id hash at another cost than the service's,
// are re-hashed on their first login. Running the same file again changes
// nothing: the stored hashes were derived from the file's, so the accounts
// keep their upgraded hashes and their tokens (no new revocation entry).
func TestSyncKeepsUpgradedHashes(t *testing.T) {
	ts := startService(t, nil, nil)
	ctx := context.Background()
	otherCost, err := HashPassword("argon-pw", Argon2Params{Memory: 512, Time: 2, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	file := []AccountState{
		{Username: "legacy", PasswordHash: werkzeugPBKDF2, Groups: []string{"analysts"}},
		{Username: "costly", PasswordHash: otherCost},
	}
	if _, err := SyncAccounts(ctx, ts.pool, file, false); err != nil {
		t.Fatal(err)
	}
	tokenFrom(t, ts.login(t, "legacy", werkzeugPassword, ""))
	tokenFrom(t, ts.login(t, "costly", "argon-pw", ""))
	for _, u := range []string{"legacy", "costly"} {
		var h string
		if err := ts.pool.QueryRow(ctx, `SELECT password_hash FROM token_accounts WHERE username = $1`, u).Scan(&h); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(h, "$argon2id$v=19$"+cheapArgon2.String()+"$") {
			t.Fatalf("%s not upgraded on login: %.40s", u, h)
		}
	}
	before := ts.feed(t, 0, 0)

	again, err := SyncAccounts(ctx, ts.pool, file, false)
	if err != nil {
		t.Fatal(err)
	}
	if again.Changed() || len(again.Unchanged) != 2 {
		t.Errorf("second run of the same file changed something: %+v", again)
	}
	if after := ts.feed(t, 0, 0); after.Cursor != before.Cursor {
		t.Errorf("second run of the same file voided tokens: %+v", after)
	}
	// The upgraded hashes stay and verify.
	tokenFrom(t, ts.login(t, "legacy", werkzeugPassword, ""))
	tokenFrom(t, ts.login(t, "costly", "argon-pw", ""))

	// A group change alone updates the groups and keeps the upgraded hash.
	file[0].Groups = []string{"readers"}
	third, err := SyncAccounts(ctx, ts.pool, file, false)
	if err != nil || !slices.Equal(third.Updated, []string{"legacy"}) {
		t.Fatalf("group change: %+v %v", third, err)
	}
	var h string
	_ = ts.pool.QueryRow(ctx, `SELECT password_hash FROM token_accounts WHERE username = 'legacy'`).Scan(&h)
	if hashScheme(h) != "argon2id" {
		t.Errorf("a group change wrote the file's old hash back: %.20s", h)
	}

	// A different hash in the file is a new password: it is written.
	file[1].PasswordHash = werkzeugScrypt
	fourth, err := SyncAccounts(ctx, ts.pool, file, false)
	if err != nil || !slices.Equal(fourth.Updated, []string{"costly"}) {
		t.Fatalf("new hash: %+v %v", fourth, err)
	}
	tokenFrom(t, ts.login(t, "costly", werkzeugPassword, ""))
}
