package caddymodule

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestXcaddyEquivalentBuild builds Caddy with this module the way
// `xcaddy build --with github.com/taxiway/taxiway=.` does: a temporary main
// module that blank-imports Caddy's standard modules and caddymodule, with a
// replace pointing at this checkout. The binary must list the module.
func TestXcaddyEquivalentBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a whole Caddy binary")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("main.go", `package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"
	_ "github.com/taxiway/taxiway/caddymodule"

	// What xcaddy's generated main imports for --with github.com/taxiway/taxiway.
	_ "github.com/taxiway/taxiway"
)

func main() {
	caddycmd.Main()
}
`)
	// The plugin's own requirements make the temporary module complete, so
	// the build needs no `go mod tidy` and, with a warm module cache, no
	// network (GOPROXY=off); the compiled packages come from the shared
	// build cache.
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	requires := string(gomod[strings.Index(string(gomod), "\nrequire"):])
	write("go.mod", "module caddy\n\ngo 1.26.0\n\nrequire github.com/taxiway/taxiway v0.0.0\n"+requires+
		"\nreplace github.com/taxiway/taxiway => "+root+"\n")
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	write("go.sum", string(sum))

	run := func(name string, args ...string) string {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOTOOLCHAIN=local", "GOFLAGS=-mod=mod", "GOPROXY=off")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	bin := filepath.Join(dir, "caddy")
	run("go", "build", "-o", bin, ".")
	out := run(bin, "list-modules")
	for _, m := range []string{"http.handlers.taxii_auth", "http.handlers.taxii_client_body"} {
		if !strings.Contains(out, m) {
			t.Fatalf("list-modules lacks %s:\n%s", m, out)
		}
	}
	// And the directive is known to the Caddyfile adapter without `order`.
	write("Caddyfile", "http://127.0.0.1:1 {\n\ttaxii_auth {\n\t\tpublic_key_file /nonexistent.pem\n\t\tbasic off\n\t}\n\trespond ok\n}\n")
	adapted := run(bin, "adapt", "--config", filepath.Join(dir, "Caddyfile"))
	if !strings.Contains(adapted, `"handler":"taxii_auth"`) {
		t.Fatalf("adapted config lacks taxii_auth:\n%s", adapted)
	}
}
