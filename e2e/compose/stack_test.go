//go:build compose

// Package compose runs docker-compose.yml with a real Docker engine and the
// real compose CLI: it builds the images, brings the stack up, walks README's
// "docker compose" section through it over HTTPS, and checks isolation,
// hardening, operations and scaling (`make test-compose`, which starts the
// engine and builds the stand-in base images this needs; build tag compose).
package compose

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// root is the repository root, where docker-compose.yml lives.
const root = "../.."

// project is the compose project the test owns: never a user's own stack.
const project = "taxiwaycomposetest"

// stack drives one compose project.
type stack struct {
	t       *testing.T
	envFile string
	port    int // the published HTTPS port, on 127.0.0.1
	// prometheusPort is the monitoring profile's Prometheus, on 127.0.0.1.
	prometheusPort int
	client         *http.Client
	phases         []phase
	// alicePassword is the account the disable phase creates and disables.
	alicePassword string
}

type phase struct {
	name string
	took time.Duration
}

// run times one phase of the test; the table is printed at the end.
func (s *stack) run(name string, f func(t *testing.T)) {
	s.t.Helper()
	start := time.Now()
	ok := s.t.Run(name, f)
	s.phases = append(s.phases, phase{name, time.Since(start)})
	fmt.Printf("phase %-34s %8.1fs\n", name, time.Since(start).Seconds())
	if !ok {
		s.t.FailNow()
	}
}

// compose runs `docker compose` on the project and returns its output.
func (s *stack) compose(t *testing.T, args ...string) (string, error) {
	t.Helper()
	full := append([]string{"compose", "--project-name", project, "--env-file", s.envFile, "-f", "docker-compose.yml"}, args...)
	return run(t, root, "docker", full...)
}

func (s *stack) mustCompose(t *testing.T, args ...string) string {
	t.Helper()
	out, err := s.compose(t, args...)
	if err != nil {
		t.Fatalf("docker compose %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func run(t *testing.T, dir, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func docker(t *testing.T, args ...string) string {
	t.Helper()
	out, err := run(t, root, "docker", args...)
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// newStack writes the project's .env the way README says (.env.example with
// the secrets set), publishing on 127.0.0.1 only, on free ports.
func newStack(t *testing.T) *stack {
	if _, err := exec.LookPath("docker"); err != nil {
		t.Fatal("no docker CLI: run `make test-compose`, which installs and starts what this needs")
	}
	example, err := os.ReadFile(filepath.Join(root, ".env.example"))
	if err != nil {
		t.Fatal(err)
	}
	s := &stack{t: t, port: freePort(t), prometheusPort: freePort(t)}
	set := map[string]string{
		"PROMETHEUS_PORT":      strconv.Itoa(s.prometheusPort),
		"GRAFANA_PORT":         strconv.Itoa(freePort(t)),
		"POSTGRES_PASSWORD":    randomHex(t, 24),
		"TAXIWAY_IDENTITY_KEY": randomHex(t, 32),
		"HTTPS_PORT":           strconv.Itoa(s.port),
		"HTTP_PORT":            strconv.Itoa(freePort(t)),
		"PUBLISH_ADDRESS":      "127.0.0.1",
		// Subnets of their own, so that a user's stack may run beside.
		"CORE_NET_SUBNET":  "10.231.110.0/24",
		"TOKEN_NET_SUBNET": "10.231.120.0/24",
	}
	var lines []string
	for _, line := range strings.Split(string(example), "\n") {
		name, _, ok := strings.Cut(line, "=")
		if v, has := set[name]; ok && has {
			line = name + "=" + v
		}
		// The base images: the shell's (stand-ins, from make test-compose) win.
		if v := os.Getenv(name); ok && v != "" && strings.HasSuffix(name, "_IMAGE") {
			line = name + "=" + v
		}
		lines = append(lines, line)
	}
	s.envFile = filepath.Join(t.TempDir(), ".env")
	if err := os.WriteFile(s.envFile, []byte(strings.Join(lines, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	return s
}

// trust makes the client trust Caddy's local root, copied out of the
// gateway as README says, and dial the published port on 127.0.0.1.
func (s *stack) trust(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	s.mustCompose(t, "cp", "gateway:/data/caddy/pki/authorities/local/root.crt", filepath.Join(dir, "root.crt"))
	pem, err := os.ReadFile(filepath.Join(dir, "root.crt"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		t.Fatalf("root.crt holds no certificate:\n%s", pem)
	}
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
	s.client = &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			// localhost is 127.0.0.1 here: the port is published there only.
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return dialer.DialContext(ctx, "tcp4", addr)
			},
			TLSClientConfig:     &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
			MaxIdleConnsPerHost: 16,
		},
	}
}

// url is https://localhost:PORT/path, as README's commands with HTTPS_PORT.
func (s *stack) url(path string) string {
	return "https://localhost:" + strconv.Itoa(s.port) + path
}

// containers lists the project's containers of service (all when "").
func containers(t *testing.T, service string, all bool) []string {
	t.Helper()
	args := []string{"ps", "-q", "--filter", "label=com.docker.compose.project=" + project}
	if service != "" {
		args = append(args, "--filter", "label=com.docker.compose.service="+service)
	}
	if all {
		args = append(args, "-a")
	}
	return strings.Fields(docker(t, args...))
}

// inspect is the part of `docker inspect` the test reads.
type inspect struct {
	ID     string
	Name   string
	Config struct {
		User   string
		Labels map[string]string
	}
	State struct {
		Status     string
		StartedAt  time.Time
		FinishedAt time.Time
		ExitCode   int
		Health     *struct {
			Status string
			Log    []struct {
				Start    time.Time
				End      time.Time
				ExitCode int
			}
		}
	}
	HostConfig struct {
		ReadonlyRootfs bool
		Privileged     bool
		CapDrop        []string
		CapAdd         []string
		SecurityOpt    []string
		PortBindings   map[string][]struct{ HostIp, HostPort string }
	}
	NetworkSettings struct {
		Networks map[string]struct{ IPAddress string }
	}
}

func (c inspect) service() string { return c.Config.Labels["com.docker.compose.service"] }

func inspectAll(t *testing.T, ids ...string) []inspect {
	t.Helper()
	if len(ids) == 0 {
		return nil
	}
	var out []inspect
	if err := json.Unmarshal([]byte(docker(t, append([]string{"inspect"}, ids...)...)), &out); err != nil {
		t.Fatalf("parsing docker inspect: %v", err)
	}
	return out
}

// TestCompose is the whole run, in order: each phase builds on the last.
func TestCompose(t *testing.T) {
	s := newStack(t)
	// Whatever happens, nothing of the project is left behind.
	t.Cleanup(func() {
		if t.Failed() {
			if out, err := s.compose(t, "logs", "--no-color", "--tail", "60"); err == nil {
				t.Logf("logs:\n%s", out)
			}
		}
		s.compose(t, "--profile", "monitoring", "down", "-v", "--remove-orphans", "--timeout", "5")
		var total time.Duration
		for _, p := range s.phases {
			total += p.took
		}
		fmt.Printf("compose test phases took %.1fs in all\n", total.Seconds())
	})

	s.run("clean state", func(t *testing.T) {
		s.mustCompose(t, "--profile", "monitoring", "down", "-v", "--remove-orphans", "--timeout", "5")
	})
	s.run("up --build --wait", func(t *testing.T) {
		s.mustCompose(t, "up", "-d", "--build", "--wait", "--wait-timeout", "600")
		checkHealthyInOrder(t)
	})
	var w walkthrough
	s.run("README walkthrough over HTTPS", func(t *testing.T) {
		s.trust(t)
		w = s.walkthrough(t)
	})
	s.run("isolation", s.isolation)
	s.run("hardening", checkHardening)
	s.run("monitoring profile: Prometheus", s.monitoring)
	s.run("account disable refuses in 2s", s.disable)
	var accepted []string
	s.run("postgres restart under load", func(t *testing.T) {
		accepted = append(accepted, s.underLoad(t, w, func(t *testing.T) {
			s.mustCompose(t, "restart", "postgres")
		})...)
	})
	s.run("down, up keeps data", func(t *testing.T) { s.downUpKeepsData(t, w, accepted) })
	s.run("scale core=3 tokenservice=2", s.scale)
	s.run("kill a core replica under load", func(t *testing.T) {
		cores := containers(t, "core", false)
		if len(cores) != 3 {
			t.Fatalf("%d cores running, want 3", len(cores))
		}
		accepted = append(accepted, s.underLoad(t, w, func(t *testing.T) {
			docker(t, "kill", cores[1])
		})...)
		s.checkAllPresent(t, w, accepted)
	})
	s.run("down -v leaves nothing", s.downLeavesNothing)
}
