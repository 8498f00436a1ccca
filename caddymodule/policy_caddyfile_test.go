package caddymodule

import (
	"os"
	"strings"
	"testing"
)

// TestPolicyCaddyfile: README's fronting example adapts, with taxii_policy
// after taxii_auth and before reverse_proxy whatever order it is written
// in, and bad options are refused with their name.
func TestPolicyCaddyfile(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(readme), "### Per-collection access in front of another TAXII server")
	_, block, _ := strings.Cut(section, "```caddyfile\n")
	block, _, _ = strings.Cut(block, "```")
	// Written in the reverse order on purpose: the directive order sorts it.
	reordered := strings.Replace(block, "\t\ttaxii_auth {", "\t\ttaxii_policy {\n\t\t\tpolicy_url http://127.0.0.1:1/internal/policy\n\t\t}\n\t\ttaxii_auth {", 1)
	reordered = strings.Replace(reordered, "\t\ttaxii_policy {\n\t\t\tpolicy_url http://tokens.internal:9020/internal/policy\n\t\t\tbackend    legacy\n\t\t}\n", "", 1)
	for name, src := range map[string]string{"README": block, "reordered": reordered} {
		cfg, err := adapt(src)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		js := string(cfg)
		a, p, r := strings.Index(js, `"handler":"taxii_auth"`), strings.Index(js, `"handler":"taxii_policy"`), strings.LastIndex(js, `"handler":"reverse_proxy"`)
		if a < 0 || p < a || r < p {
			t.Errorf("%s: handler order auth %d, policy %d, proxy %d in %s", name, a, p, r, js)
		}
	}
	for opt, want := range map[string]string{
		"policy_url ftp://x":      "policy_url",
		"backend ../x":            "backend",
		"discovery_path /taxii2":  "discovery_path",
		"discovery_path /a/../b/": "discovery_path",
		"max_age 5s":              "max_age",
		"max_list_bytes 0":        "max_list_bytes",
		"max_entries lots":        "max_entries",
		"policy_url http://a\n\t\tpolicy_url http://b": "twice",
		"colour blue": "unrecognized",
	} {
		_, err := adapt("http://127.0.0.1:1 {\n\ttaxii_policy {\n\t\t" + opt + "\n\t}\n}\n")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err = %v, want it to name %s", opt, err, want)
		}
	}
}
