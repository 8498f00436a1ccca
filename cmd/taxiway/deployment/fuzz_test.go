package deployment

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoadSyncFile: the sync YAML decoder refuses or reads any file (alias
// bombs, deep nesting, unknown keys, wrong types) without a panic or a hang,
// and what it reads either validates or gets a named error.
func FuzzLoadSyncFile(f *testing.F) {
	for _, s := range []string{
		"api_roots:\n  - name: api1\n    title: T\n    collections:\n      - id: edaca48c-eae6-47e0-82b3-18a87ff3692f\n        title: C\n        grants:\n          - {to: authenticated, read: true}\naccounts:\n  - username: a\n    password_hash: \"$argon2id$v=19$m=65536,t=3,p=1$x$y\"\n",
		"discovery: {title: x, default: nope}\n", "api_roots: [{name: '../x', title: t}]\n", "unknown: 1\n",
		"a: &a [*a, *a]\n", "x: &x [1,2]\ny: &y [*x,*x,*x,*x]\nz: [*y,*y,*y,*y]\n", "api_roots: {name: 1}\n",
		strings.Repeat("[", 200) + strings.Repeat("]", 200), "\x00\xff", "accounts:\n  - username: \"a\\0b\"\n    password_file: /etc/shadow\n",
	} {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(dir, "sync.yaml")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		file, err := Load(path)
		if err != nil {
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		catalog := file.catalog()
		_ = catalog.Validate()
	})
}
