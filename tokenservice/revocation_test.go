package tokenservice

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"
)

// feed reads one page of the revocation feed.
func (ts *testService) feed(t *testing.T, after int64, wait int) RevocationPage {
	t.Helper()
	resp, err := http.Get(ts.http.URL + "/internal/revocations?after=" + strconv.FormatInt(after, 10) + "&wait=" + strconv.Itoa(wait))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("feed: status %d", resp.StatusCode)
	}
	var p RevocationPage
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
		t.Fatal(err)
	}
	return p
}

// claimsOf returns the verified claims of a login's token.
func (ts *testService) claimsOf(t *testing.T, r response) map[string]any {
	t.Helper()
	_, c := verifyEdDSA(t, tokenFrom(t, r), ts.fetchJWKS(t, "/.well-known/jwks.json"))
	return c
}

// TestRevocationFeed: every kind of account change and a single-token
// revocation reach the feed in commit order, a long poll is answered as
// soon as one commits, tokens carry the account version the feed compares,
// and a re-hash on login revokes nothing.
func TestRevocationFeed(t *testing.T) {
	ts := startService(t, nil, nil)
	ctx := context.Background()
	ts.addAccount(t, "frank", "pw", "analysts")

	start := ts.feed(t, 0, 0)
	if len(start.Entries) != 0 || start.Cursor != 0 {
		t.Fatalf("fresh feed: %+v", start)
	}
	v1 := int64(ts.claimsOf(t, ts.login(t, "frank", "pw", ""))["account_version"].(float64))
	if v1 <= 0 {
		t.Fatalf("account_version %d", v1)
	}

	// A long poll waits, and returns as soon as a change commits.
	got := make(chan RevocationPage, 1)
	go func() { got <- ts.feed(t, 0, 20) }()
	time.Sleep(100 * time.Millisecond) // let the poll start waiting; it must not return early anyway
	changed := time.Now()
	if err := SetDisabled(ctx, ts.pool, "frank", true); err != nil {
		t.Fatal(err)
	}
	var p RevocationPage
	select {
	case p = <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("long poll not answered within 5s of the change")
	}
	t.Logf("long poll answered %v after the change", time.Since(changed))
	if d := time.Since(changed); d > 2*time.Second {
		t.Errorf("long poll answered %v after the change", d)
	}
	if len(p.Entries) != 1 || p.Entries[0].Username != "frank" || p.Entries[0].MinVersion <= v1 || !p.Entries[0].Disabled {
		t.Fatalf("after disable: %+v", p)
	}
	if until := time.Unix(p.Entries[0].Until, 0); until.Before(time.Now().Add(MaxTTL)) {
		t.Errorf("account entry kept only until %v", until)
	}

	// Enable, password, groups, revoke-all, delete, one token: one entry each.
	if err := SetDisabled(ctx, ts.pool, "frank", false); err != nil {
		t.Fatal(err)
	}
	v2 := int64(ts.claimsOf(t, ts.login(t, "frank", "pw", ""))["account_version"].(float64))
	if v2 < p.Entries[0].MinVersion {
		t.Errorf("token after enable has version %d, below the feed's %d", v2, p.Entries[0].MinVersion)
	}
	h, _ := HashPassword("pw2", cheapArgon2)
	steps := []func() error{
		func() error { return SetPasswordHash(ctx, ts.pool, "frank", h) },
		func() error { return SetGroups(ctx, ts.pool, "frank", []string{"readers"}) },
		func() error { return SetGroups(ctx, ts.pool, "frank", []string{"readers"}) }, // no change: no entry
		func() error { return RevokeAccountTokens(ctx, ts.pool, "frank") },
		func() error { return RevokeToken(ctx, ts.pool, "some-jti", time.Now().Add(time.Hour)) },
		func() error { return DeleteAccount(ctx, ts.pool, "frank") },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	all := ts.feed(t, 0, 0)
	if len(all.Entries) != 7 {
		t.Fatalf("want 7 entries (disable, enable, password, groups, revoke, jti, delete), got %+v", all.Entries)
	}
	for i := 1; i < len(all.Entries); i++ {
		if all.Entries[i].Seq <= all.Entries[i-1].Seq {
			t.Fatalf("entries out of order: %+v", all.Entries)
		}
	}
	if e := all.Entries[5]; e.JTI != "some-jti" || e.Username != "" {
		t.Errorf("jti entry %+v", e)
	}
	if all.Entries[1].Disabled || all.Entries[2].Disabled {
		t.Errorf("enabled account published as disabled: %+v", all.Entries[1:3])
	}
	if last := all.Entries[6]; last.Username != "frank" || last.MinVersion <= all.Entries[4].MinVersion || !last.Disabled {
		t.Errorf("delete entry %+v", last)
	}
	if all.Cursor != all.Entries[6].Seq {
		t.Errorf("cursor %d, want the last seq %d", all.Cursor, all.Entries[6].Seq)
	}
	// Created again under the same name: published as a live account.
	ts.addAccount(t, "frank", "pw3")
	again := ts.feed(t, all.Cursor, 0)
	if len(again.Entries) != 1 || again.Entries[0].Disabled || again.Entries[0].MinVersion <= all.Entries[6].MinVersion {
		t.Fatalf("account created again: %+v", again.Entries)
	}
	all.Cursor = again.Cursor
	// A new name is not published at all.
	ts.addAccount(t, "ivy", "pw")
	// From the cursor: nothing new, and a short wait returns empty.
	if p := ts.feed(t, all.Cursor, 1); len(p.Entries) != 0 || p.Cursor != all.Cursor || p.Reset {
		t.Errorf("from the end: %+v", p)
	}
	// A cursor from another database resets the reader.
	if p := ts.feed(t, all.Cursor+1000, 0); !p.Reset || len(p.Entries) != 8 {
		t.Errorf("cursor ahead of the feed: %+v", p)
	}

	// A login that re-hashes an imported hash revokes nothing.
	ts.addAccount(t, "gina", "pw")
	if _, err := ts.pool.Exec(ctx, `UPDATE token_accounts SET password_hash = $1 WHERE username = 'gina'`,
		"$2a$04$R2h4Zl0xYXpQkA0/e9qkTOBUjEl6jrR8Yjq4EJwY3lWjMZ8eZcJ6W"); err != nil {
		t.Fatal(err)
	}
	before := ts.feed(t, 0, 0).Cursor
	ts.login(t, "gina", "pw", "")
	if p := ts.feed(t, before, 0); len(p.Entries) != 0 {
		t.Errorf("a login revoked something: %+v", p.Entries)
	}

	if r := (testServiceGet(t, ts, "/internal/revocations?wait=99")); r != http.StatusBadRequest {
		t.Errorf("wait=99: %d, want 400", r)
	}
}

func testServiceGet(t *testing.T, ts *testService, path string) int {
	t.Helper()
	resp, err := http.Get(ts.http.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestRateLimitParallelBurst: a burst of parallel wrong passwords from one
// address at one account gets exactly PerPair hashes, the rest 429.
func TestRateLimitParallelBurst(t *testing.T) {
	ts := startService(t, nil, func(c *Config) {
		c.RateLimit = RateLimit{Window: time.Minute, PerAddress: 100, PerPair: 10}
		c.MaxConcurrentHashes = 64
	})
	ts.addAccount(t, "hank", "right")
	const burst = 40
	var wg sync.WaitGroup
	statuses := make(chan int, burst)
	for i := range burst {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses <- ts.login(t, "hank", "wrong"+strconv.Itoa(i), "198.51.100.20").status
		}()
	}
	wg.Wait()
	close(statuses)
	counts := map[int]int{}
	for s := range statuses {
		counts[s]++
	}
	if counts[401] != 10 || counts[429] != burst-10 {
		t.Errorf("burst of %d: %v, want exactly 10 401s and the rest 429", burst, counts)
	}
	// And the right password from there is refused too, until the window ends.
	if r := ts.login(t, "hank", "right", "198.51.100.20"); r.status != 429 {
		t.Errorf("right password after the burst: %d, want 429", r.status)
	}
}

// TestPlainSQLPasswordChangeRevokes: README says changes made with SQL are
// revoked too. A password_hash written with plain SQL voids the account's
// tokens (a feed entry above their version); a re-hash on login does not.
func TestPlainSQLPasswordChangeRevokes(t *testing.T) {
	ts := startService(t, nil, nil)
	ctx := context.Background()
	ts.addAccount(t, "sql", "pw")
	v := int64(ts.claimsOf(t, ts.login(t, "sql", "pw", ""))["account_version"].(float64))
	if p := ts.feed(t, 0, 0); len(p.Entries) != 0 {
		t.Fatalf("feed before: %+v", p)
	}
	h, _ := HashPassword("new-pw", cheapArgon2)
	if _, err := ts.pool.Exec(ctx, `UPDATE token_accounts SET password_hash = $1 WHERE username = 'sql'`, h); err != nil {
		t.Fatal(err)
	}
	p := ts.feed(t, 0, 0)
	if len(p.Entries) != 1 || p.Entries[0].Username != "sql" || p.Entries[0].MinVersion <= v {
		t.Fatalf("plain SQL password change: feed %+v, token version %d", p, v)
	}
	if r := ts.login(t, "sql", "pw", ""); r.status != http.StatusUnauthorized {
		t.Errorf("old password after the SQL change: %d", r.status)
	}
	tokenFrom(t, ts.login(t, "sql", "new-pw", ""))
}
