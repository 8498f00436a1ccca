package tokenservice

import (
	"context"
	"slices"
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
