package deployment

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/taxiway/taxiway/internal/pgtest"
	"github.com/taxiway/taxiway/tokenservice"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// The demo file the local stack and compose apply loads, applies, and
// applies again without changing anything.
func TestDemoFileAppliesIdempotently(t *testing.T) {
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	if _, err := Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if again, err := Migrate(ctx, pool); err != nil || len(again) != 0 {
		t.Fatalf("second migrate applied %v (%v), want nothing", again, err)
	}
	f, err := Load("../../../deploy/demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	first, err := Apply(ctx, pool, f, false)
	if err != nil {
		t.Fatal(err)
	}
	if !first.Core.Changed() || !first.Accounts.Changed() {
		t.Fatalf("first apply changed nothing: %v / %v", first.Core, first.Accounts)
	}
	second, err := Apply(ctx, pool, f, false)
	if err != nil || second.Core.Changed() || second.Accounts.Changed() {
		t.Fatalf("second apply: %v / %v (%v), want no change", second.Core, second.Accounts, err)
	}
	accounts, err := tokenservice.ListAccounts(ctx, pool)
	if err != nil || len(accounts) != 1 || accounts[0].Username != "test" {
		t.Fatalf("accounts after the demo file: %+v (%v)", accounts, err)
	}
}

// Unknown keys are errors (a typo must not drop a grant silently), and
// password files are read relative to the YAML file, not the working folder.
func TestLoad(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	typo := write("typo.yaml", "api_roots:\n  - name: api1\n    title: t\n    collections:\n      - id: edaca48c-eae6-47e0-82b3-18a87ff3692f\n        title: c\n        grantz: []\n")
	if _, err := Load(typo); err == nil || !strings.Contains(err.Error(), "grantz") {
		t.Errorf("a misspelt key: err = %v, want it named", err)
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml")); err == nil {
		t.Error("a missing file loaded")
	}

	write("pw.txt", "s3cret-password\n")
	ctx := context.Background()
	pool := migratedPool(t)
	f, err := Load(write("accounts.yaml", "accounts:\n  - username: feed\n    password_file: pw.txt\n"))
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(t.TempDir()) // elsewhere: the path must still resolve beside the file
	if _, err := Apply(ctx, pool, f, false); err != nil {
		t.Fatalf("applying a password_file relative to the YAML: %v", err)
	}
}

// The fronted section reaches the gateway policy: applied, applied again
// without change, and validated like the rest of the file.
func TestFrontedSection(t *testing.T) {
	ctx := context.Background()
	pool := migratedPool(t)
	const yaml = `
fronted:
  - backend: legacy
    api_roots:
      - path: /api1/
        public: true
        collections:
          - id: 365FED99-08fa-fdcd-a1b3-fb247eb41d01
            alias: shared-iocs
            grants:
              - {to: "group:partners", read: true}
              - {to: "group:analysts", read: true, write: true}
`
	f := decodeSpec(t, yaml)
	first, err := Apply(ctx, pool, f, false)
	if err != nil || len(first.Policy.Created) != 5 {
		t.Fatalf("first apply: %+v (%v)", first.Policy, err)
	}
	if again, err := Apply(ctx, pool, f, true); err != nil || again.Policy.Changed() {
		t.Fatalf("second apply: %+v (%v)", again.Policy, err)
	}
	snap, err := tokenservice.ReadPolicy(ctx, pool)
	if err != nil || len(snap.Backends) != 1 || snap.Backends[0].Roots[0].Collections[0].ID != "365fed99-08fa-fdcd-a1b3-fb247eb41d01" {
		t.Fatalf("stored %+v (%v)", snap, err)
	}
	bad := decodeSpec(t, strings.Replace(yaml, "path: /api1/", "path: /api1/../x/", 1))
	if _, err := Apply(ctx, pool, bad, false); err == nil || !strings.Contains(err.Error(), "/api1/../x/") {
		t.Fatalf("a dot segment in a root path: %v", err)
	}
}
