//go:build compose

package compose

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// The probe binary, built once (static: the images have no libc).
var probeBuild struct {
	once sync.Once
	path string
	err  error
	out  []byte
}

func probeBinary(t *testing.T) string {
	t.Helper()
	probeBuild.once.Do(func() {
		dir, err := os.MkdirTemp("", "taxiway-compose-probe")
		if err != nil {
			probeBuild.err = err
			return
		}
		probeBuild.path = filepath.Join(dir, "probe")
		cmd := exec.Command("go", "build", "-o", probeBuild.path, "./probe")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		probeBuild.out, probeBuild.err = cmd.CombinedOutput()
	})
	if probeBuild.err != nil {
		t.Fatalf("building the probe: %v\n%s", probeBuild.err, probeBuild.out)
	}
	return probeBuild.path
}

// probe runs the probe in a throwaway container attached to one of the
// project's networks (in the taxiway image, whose entrypoint it replaces).
func probe(t *testing.T, network string, args ...string) string {
	t.Helper()
	full := append([]string{"run", "--rm", "--network", project + "_" + network,
		"--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges:true",
		"-v", probeBinary(t) + ":/probe:ro", "--entrypoint", "/probe", "taxiway:local"}, args...)
	return strings.TrimSpace(docker(t, full...))
}

// isolation: from a throwaway container on each network, what answers.
func (s *stack) isolation(t *testing.T) {
	type reach struct{ core, token, postgres, gateway bool }
	for network, want := range map[string]reach{
		"public":   {gateway: true},
		"core":     {core: true, gateway: true},
		"tokens":   {token: true, gateway: true},
		"core-db":  {core: true, postgres: true},
		"token-db": {token: true, postgres: true},
		// Prometheus's, one per part (the monitoring profile).
		"core-metrics":    {core: true},
		"token-metrics":   {token: true},
		"gateway-metrics": {gateway: true},
	} {
		for target, open := range map[string]bool{
			"core:9010":         want.core,
			"tokenservice:9020": want.token,
			"postgres:5432":     want.postgres,
			"gateway:443":       want.gateway,
		} {
			got := probe(t, network, "tcp", target)
			if (got == "open") != open {
				t.Errorf("from network %s, %s: %s; want open=%v", network, target, got, open)
			}
		}
	}

	// Identity headers are believed only with the gateway's signature: from
	// the core's own network (the trusted subnet) and from the database
	// network, claiming the demo user or the admin group gets nothing.
	objects := "http://core:9010/api1/collections/" + demoCollection + "/objects/"
	for _, network := range []string{"core", "core-db", "core-metrics"} {
		for _, headers := range [][]string{
			{"X-Authenticated-User: test"},
			{"X-Authenticated-User: root", "X-Authenticated-Groups: taxiway-admin"},
		} {
			args := append([]string{"http", objects, "Accept: " + taxiiType}, headers...)
			out := probe(t, network, args...)
			status, body, _ := strings.Cut(out, "\n")
			if code, err := strconv.Atoi(status); err != nil || code < 400 || code >= 500 {
				t.Errorf("from network %s with %v the core answered %q, want a 4xx refusal", network, headers, out)
			} else if strings.Contains(body, readmeObjectID) {
				t.Errorf("from network %s with %v the core handed out objects", network, headers)
			}
		}
	}

	// Only the gateway publishes ports, and here only on 127.0.0.1.
	for _, c := range inspectAll(t, containers(t, "", true)...) {
		for port, bindings := range c.HostConfig.PortBindings {
			if c.service() != "gateway" {
				t.Errorf("%s publishes %s", c.Name, port)
			}
			for _, b := range bindings {
				if b.HostIp != "127.0.0.1" {
					t.Errorf("%s publishes %s on %q, want 127.0.0.1 (PUBLISH_ADDRESS)", c.Name, port, b.HostIp)
				}
			}
		}
	}
}

// checkHardening: what docker-compose.yml claims, as the engine applied it.
func checkHardening(t *testing.T) {
	all := inspectAll(t, containers(t, "", true)...)
	if len(all) < 5 {
		t.Fatalf("%d containers, want the five services'", len(all))
	}
	for _, c := range all {
		user := c.Config.User
		if uid, _, _ := strings.Cut(user, ":"); uid == "" || uid == "0" || uid == "root" {
			t.Errorf("%s runs as %q, want an unprivileged user", c.Name, user)
		}
		if !c.HostConfig.ReadonlyRootfs {
			t.Errorf("%s: root file system is writable", c.Name)
		}
		if c.HostConfig.Privileged {
			t.Errorf("%s is privileged", c.Name)
		}
		if !slices.Contains(c.HostConfig.CapDrop, "ALL") || len(c.HostConfig.CapAdd) > 0 {
			t.Errorf("%s: cap_drop %v, cap_add %v; want ALL dropped, none added", c.Name, c.HostConfig.CapDrop, c.HostConfig.CapAdd)
		}
		if !slices.Contains(c.HostConfig.SecurityOpt, "no-new-privileges:true") {
			t.Errorf("%s: security options %v lack no-new-privileges", c.Name, c.HostConfig.SecurityOpt)
		}
	}
	// The processes really run as those users: no root process in any
	// running container.
	for _, id := range containers(t, "", false) {
		out := docker(t, "top", id, "-o", "pid,uid,comm")
		for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
			if f := strings.Fields(line); len(f) > 1 && (f[1] == "0" || f[1] == "root") {
				t.Errorf("container %s runs a root process: %s", id[:12], line)
			}
		}
	}
}
