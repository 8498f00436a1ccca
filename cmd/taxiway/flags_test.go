package main

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/taxiway/taxiway/internal/pgtest"
	"github.com/taxiway/taxiway/internal/testbin"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestParseFlags(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		want     int
		name     string
		rest     []string
		groups   string
		errMatch string
	}{
		{args: []string{"disable", "bob", "-database-url", "URL"}, want: -1, name: "URL", rest: []string{"disable", "bob"}},
		{args: []string{"-database-url", "URL", "disable", "bob"}, want: -1, name: "URL", rest: []string{"disable", "bob"}},
		{args: []string{"create", "-groups", "a,b", "bob", "-database-url=URL"}, want: -1, name: "URL", groups: "a,b", rest: []string{"create", "bob"}},
		{args: []string{"create", "--", "-bob", "-groups", "x"}, want: -1, rest: []string{"create", "-bob", "-groups", "x"}},
		{args: []string{"-", "-groups", "g"}, want: -1, groups: "g", rest: []string{"-"}},
		{args: []string{"-database-url", "URL"}, want: 0, name: "URL"},
		{args: []string{"stray", "-database-url", "URL"}, want: 0, errMatch: `test takes flags only, got the argument(s) "stray"`},
		{args: []string{"a", "b"}, want: 1, errMatch: "test takes 1 argument(s), got 2"},
		{args: []string{"a", "-nope"}, want: -1, errMatch: "flag provided but not defined: -nope"},
	} {
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		fs.SetOutput(new(strings.Builder))
		db := fs.String("database-url", "", "")
		groups := fs.String("groups", "", "")
		err := parseFlags(fs, tc.args, tc.want)
		if tc.errMatch != "" {
			if err == nil || !strings.Contains(err.Error(), tc.errMatch) {
				t.Errorf("%q: err %v, want %q", tc.args, err, tc.errMatch)
			}
			continue
		}
		if err != nil || *db != tc.name || *groups != tc.groups || !slices.Equal(fs.Args(), tc.rest) && len(fs.Args())+len(tc.rest) > 0 {
			t.Errorf("%q: err %v, database-url %q, groups %q, args %q", tc.args, err, *db, *groups, fs.Args())
		}
	}
}

// TestFlagsAnywhere runs the taxiway binary's admin verbs as people type
// them, flags after the positional arguments (and before the action), on a
// real database named only by the flag, and checks each took effect.
func TestFlagsAnywhere(t *testing.T) {
	bin, err := testbin.Taxiway(filepath.Join("..", ".."), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	db := pgtest.NewDatabase(t)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TAXIWAY_") {
			env = append(env, kv)
		}
	}
	run := func(stdin string, args ...string) (string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Env = env
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	ok := func(stdin string, args ...string) string {
		t.Helper()
		out, err := run(stdin, args...)
		if err != nil {
			t.Fatalf("taxiway %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	cheap := "m=8192,t=1,p=1"
	ok("", "migrate", "-database-url", db)
	ok("pw-of-bob\n", "account", "create", "bob", "-groups", "g1", "-database-url", db, "-argon2", cheap)
	ok("", "account", "disable", "bob", "-database-url", db)
	ok("", "account", "-database-url", db, "groups", "bob", "g2,g3")
	ok("pw-two\n", "account", "passwd", "bob", "-argon2", cheap, "-database-url", db)
	if out := ok("", "account", "list", "-database-url", db); !lineHas(out, "bob", "g2,g3", "true") {
		t.Errorf("account list after disable and groups, flags last:\n%s", out)
	}
	ok("", "account", "enable", "bob", "-database-url", db)
	ok("", "root", "add", "-name", "r1", "-database-url", db, "-title", "R1")
	ok("", "root", "-database-url", db, "add", "-name", "r2", "-public", "-title", "R2")
	if out := ok("", "root", "list", "-database-url", db); !strings.Contains(out, "r1") || !lineHas(out, "r2", "true") {
		t.Errorf("root list:\n%s", out)
	}
	col := strings.TrimSpace(ok("", "collection", "add", "-root", "r1", "-title", "c1", "-database-url", db))
	ok("", "grant", "add", "-collection", col, "-to", "user:bob", "-read", "-database-url", db)
	if out := ok("", "grant", "list", "-database-url", db); !lineHas(out, col, "user:bob", "true", "false") {
		t.Errorf("grant list:\n%s", out)
	}
	ok("", "token", "revoke", "-user", "bob", "-database-url", db)
	ok("", "token", "-database-url", db, "revoke", "-jti", "abc")
	ok("", "key", "rotate", "-database-url", db)
	yaml := filepath.Join(t.TempDir(), "sync.yaml")
	if err := os.WriteFile(yaml, []byte("api_roots:\n  - name: r3\n    title: from sync\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ok("", "sync", yaml, "-database-url", db)
	if out := ok("", "root", "list", "-database-url", db); !strings.Contains(out, "r3") {
		t.Errorf("sync with the flag after the file did not apply it:\n%s", out)
	}
	medallion := filepath.Join("importcmd", "testdata", "medallion")
	ok("", "import", "medallion", "-dry-run", "-quiet", "-database-url", db, "-from", filepath.Join(medallion, "default_data.json"))

	// What cannot work says where the flags or arguments go.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"import", "-from", "x", "medallion"}, "the source's name comes first, its flags after it"},
		{[]string{"root", "add", "r4", "-database-url", db}, `root add takes flags only, got the argument(s) "r4"`},
		{[]string{"migrate", "now", "-database-url", db}, `migrate takes flags only, got the argument(s) "now"`},
		{[]string{"account", "disable", "-database-url", db}, "account disable takes 1 argument(s), got 0"},
		{[]string{"core", "extra", "-database-url", db}, `core takes flags only`},
	} {
		out, err := run("", tc.args...)
		if err == nil || !strings.Contains(out, tc.want) {
			t.Errorf("taxiway %s: %v, output %q, want it to say %q", strings.Join(tc.args, " "), err, out, tc.want)
		}
	}
}

// lineHas reports whether a line of out holds every field, in order.
func lineHas(out string, fields ...string) bool {
	for _, line := range strings.Split(out, "\n") {
		rest, found := line, true
		for _, f := range fields {
			i := strings.Index(rest, f)
			if i < 0 {
				found = false
				break
			}
			rest = rest[i+len(f):]
		}
		if found {
			return true
		}
	}
	return false
}
