package deploy_test

// These tests check the systemd units under deploy/systemd: systemd itself
// parses them (systemd-analyze verify) and rates their sandboxing
// (systemd-analyze security), and every command, flag and variable they
// use is one the binaries accept.

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
)

const systemdDir = "systemd"

var exposureRE = regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`)

// The paths the units name, as README's install steps put the files.
const (
	unitTaxiwayBin = "/usr/local/bin/taxiway"
	unitGatewayBin = "/usr/local/bin/taxiway-gateway"
	unitCaddyfile  = "/etc/taxiway/Caddyfile"
)

// unit is a parsed unit file: section, then key, then every value in order.
type unit map[string]map[string][]string

func (u unit) get(section, key string) []string { return u[section][key] }

func (u unit) last(section, key string) string {
	v := u[section][key]
	if len(v) == 0 {
		return ""
	}
	return v[len(v)-1]
}

func readUnit(t *testing.T, path string) unit {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unit{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "["):
			section = strings.Trim(line, "[]")
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s: cannot read line %q", path, line)
			}
			u[section][k] = append(u[section][k], v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return u
}

// units are the shipped unit files by name.
func units(t *testing.T) map[string]unit {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(systemdDir, "*.service"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no units in %s (%v)", systemdDir, err)
	}
	out := map[string]unit{}
	for _, p := range paths {
		out[filepath.Base(p)] = readUnit(t, p)
	}
	return out
}

// environment is what a unit's process gets: its Environment= lines, then
// its EnvironmentFile= files as the shipped examples fill them.
func environment(t *testing.T, u unit) types.MappingWithEquals {
	t.Helper()
	env := types.MappingWithEquals{}
	set := func(kv string) {
		k, v, _ := strings.Cut(strings.Trim(kv, `"`), "=")
		env[k] = &v
	}
	for _, kv := range u.get("Service", "Environment") {
		set(kv)
	}
	for _, file := range u.get("Service", "EnvironmentFile") {
		example := filepath.Join(systemdDir, filepath.Base(strings.TrimPrefix(file, "-"))+".example")
		b, err := os.ReadFile(example)
		if err != nil {
			t.Fatalf("EnvironmentFile=%s has no example %s: %v", file, example, err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
				set(line)
			}
		}
	}
	return env
}

// TestSystemdUnitsVerify: systemd parses every unit without a complaint
// (unknown keys, bad values, missing binaries are all reported), and rates
// each one's exposure "OK" or better. The binaries are the ones built for
// this test, put where the units expect them.
func TestSystemdUnitsVerify(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed (Debian: apt-get install systemd)")
	}
	taxiway, gateway := binaries(t)
	dir := t.TempDir()
	var files []string
	for name := range units(t) {
		b, err := os.ReadFile(filepath.Join(systemdDir, name))
		if err != nil {
			t.Fatal(err)
		}
		text := strings.ReplaceAll(string(b), unitGatewayBin, gateway)
		text = strings.ReplaceAll(text, unitTaxiwayBin, taxiway)
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, p)
	}
	slices.Sort(files)
	out, err := exec.Command(analyze, append([]string{"verify", "--man=no"}, files...)...).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	for _, f := range files {
		// 2.0 is well inside systemd's "OK" band (below 4.0); the units
		// score about 1.2 (the gateway 1.4: it binds ports 80 and 443).
		out, err := exec.Command(analyze, "security", "--offline=yes", f).CombinedOutput()
		m := exposureRE.FindSubmatch(out)
		if err != nil || m == nil {
			t.Fatalf("systemd-analyze security %s: %v\n%s", filepath.Base(f), err, out)
		}
		if level, _ := strconv.ParseFloat(string(m[1]), 64); level > 2.0 {
			t.Errorf("%s: exposure level %.1f, want at most 2.0\n%s", filepath.Base(f), level, out)
		}
	}
}

// TestSystemdUnits: every long-running unit restarts on failure with a
// bounded crash loop and runs sandboxed as a throwaway user; every command
// line and variable is one the binaries accept.
func TestSystemdUnits(t *testing.T) {
	taxiway, gateway := binaries(t)
	for name, u := range units(t) {
		t.Run(name, func(t *testing.T) {
			for key, want := range map[string]string{
				"DynamicUser": "yes", "NoNewPrivileges": "yes", "ProtectSystem": "strict",
				"ProtectHome": "yes", "PrivateTmp": "yes", "PrivateDevices": "yes",
			} {
				if got := u.last("Service", key); got != want {
					t.Errorf("%s=%q, want %q", key, got, want)
				}
			}
			if u.last("Service", "Type") != "oneshot" {
				if got := u.last("Service", "Restart"); got != "on-failure" {
					t.Errorf("Restart=%q, want on-failure", got)
				}
				if u.last("Unit", "StartLimitBurst") == "" || u.last("Unit", "StartLimitIntervalSec") == "" {
					t.Error("no StartLimitBurst/StartLimitIntervalSec: a crash loop would go on for ever")
				}
				if u.get("Install", "WantedBy") == nil {
					t.Error("no [Install] WantedBy: systemctl enable would not start it at boot")
				}
			}
			execStart := strings.Fields(u.last("Service", "ExecStart"))
			if len(execStart) == 0 {
				t.Fatal("no ExecStart")
			}
			env := environment(t, u)
			switch execStart[0] {
			case unitTaxiwayBin:
				checkTaxiwayArgs(t, taxiway, execStart[1:])
				svc := types.ServiceConfig{Name: name}
				svc.Command, svc.Environment = execStart[1:2], env
				checkTaxiwayEnv(t, taxiway, svc)
			case unitGatewayBin:
				checkGatewayUnit(t, gateway, execStart[1:], env)
			default:
				t.Errorf("ExecStart runs %s, neither %s nor %s", execStart[0], unitTaxiwayBin, unitGatewayBin)
			}
		})
	}
}

// checkTaxiwayArgs: a subcommand whose -h lists every flag given.
func checkTaxiwayArgs(t *testing.T, bin string, args []string) {
	t.Helper()
	if len(args) == 0 {
		t.Fatal("ExecStart names no taxiway subcommand")
	}
	usage := help(t, bin, args[0])
	for _, a := range args[1:] {
		if !strings.HasPrefix(a, "-") {
			continue
		}
		flag, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.Contains(usage, "  -"+flag+" ") && !strings.Contains(usage, "  -"+flag+"\n") {
			t.Errorf("`taxiway %s` has no flag -%s", args[0], flag)
		}
	}
}

// checkGatewayUnit: the gateway runs the repository's Caddyfile (installed
// as unitCaddyfile), every TAXIWAY_* variable it sets is one the Caddyfile
// reads, and Caddy adapts the Caddyfile with exactly the unit's
// environment.
func checkGatewayUnit(t *testing.T, bin string, args []string, env types.MappingWithEquals) {
	t.Helper()
	want := []string{"run", "--config", unitCaddyfile, "--adapter", "caddyfile"}
	if !slices.Equal(args, want) {
		t.Fatalf("gateway arguments %q, want %q", args, want)
	}
	read := caddyfileVars(t)
	for v := range env {
		if strings.HasPrefix(v, "TAXIWAY_") && !read[v] {
			t.Errorf("the gateway unit sets %s, which the Caddyfile never reads", v)
		}
	}
	out := adaptWithEnv(t, bin, env, "the gateway unit's environment")
	for _, s := range []string{`"dial":"` + *env["TAXIWAY_CORE_UPSTREAM"] + `"`, `"dial":"` + *env["TAXIWAY_TOKEN_UPSTREAM"] + `"`,
		`"admin":{"listen":"unix//run/taxiway-gateway/admin.sock|0600"`} {
		if !strings.Contains(string(out), s) {
			t.Errorf("the adapted config lacks %s", s)
		}
	}
}
