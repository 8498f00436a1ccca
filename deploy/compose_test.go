package deploy_test

// These tests check docker-compose.yml, the Dockerfiles and .env.example
// without a Docker engine: the compose file is loaded with compose-go (the
// loader docker compose itself uses) and compared with what the binaries,
// the Caddyfile and go.mod say.

import (
	"bufio"
	"context"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/taxiway/taxiway/cmd/taxiway/localstack"
	"github.com/taxiway/taxiway/internal/testbin"
)

// root is the repository root, where docker-compose.yml lives.
const root = ".."

// taxiwayImage and gatewayImage are the images the Dockerfiles build.
const (
	taxiwayImage = "taxiway:local"
	gatewayImage = "taxiway-gateway:local"
)

// loadProject loads docker-compose.yml, then any override files (paths
// relative to the repository root), with envFile as the only .env.
func loadProject(t *testing.T, envFile string, overrides ...string) (*types.Project, error) {
	t.Helper()
	files := []string{filepath.Join(root, "docker-compose.yml")}
	for _, o := range overrides {
		files = append(files, filepath.Join(root, o))
	}
	opts, err := cli.NewProjectOptions(
		files,
		cli.WithWorkingDirectory(root),
		// Only the given file, never the developer's own .env or shell.
		cli.WithEnvFiles(envFile),
		cli.WithDotEnv,
	)
	if err != nil {
		return nil, err
	}
	return opts.LoadProject(context.Background())
}

// project is docker-compose.yml as `docker compose` would see it with
// .env.example copied to .env.
func project(t *testing.T) *types.Project {
	t.Helper()
	p, err := loadProject(t, filepath.Join(root, ".env.example"))
	if err != nil {
		t.Fatalf("loading docker-compose.yml with .env.example: %v", err)
	}
	return p
}

func service(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, err := p.GetService(name)
	if err != nil {
		t.Fatalf("service %s: %v", name, err)
	}
	return s
}

func env(s types.ServiceConfig, name string) string {
	if v := s.Environment[name]; v != nil {
		return *v
	}
	return ""
}

func TestServices(t *testing.T) {
	p := project(t)
	want := []string{"core", "gateway", "migrate", "postgres", "tokenservice"}
	if got := p.ServiceNames(); !slices.Equal(sorted(got), want) {
		t.Fatalf("services = %v, want %v", sorted(got), want)
	}
	for _, name := range []string{"core", "tokenservice", "migrate"} {
		if s := service(t, p, name); s.Image != taxiwayImage || s.Build == nil || s.Build.Dockerfile != "Dockerfile" {
			t.Errorf("%s: image %q built from %+v, want %s from Dockerfile", name, s.Image, s.Build, taxiwayImage)
		}
	}
	if s := service(t, p, "gateway"); s.Image != gatewayImage || s.Build == nil || s.Build.Dockerfile != "Dockerfile.gateway" {
		t.Errorf("gateway: image %q built from %+v, want %s from Dockerfile.gateway", s.Image, s.Build, gatewayImage)
	}
	pg := service(t, p, "postgres")
	if !strings.HasPrefix(pg.Image, "postgres:15") {
		t.Errorf("postgres image = %q, want the official postgres:15", pg.Image)
	}
	if !hasVolume(pg, "/var/lib/postgresql/data", types.VolumeTypeVolume) {
		t.Errorf("postgres keeps its data outside a named volume: %+v", pg.Volumes)
	}
	gw := service(t, p, "gateway")
	if !hasVolume(gw, "/data", types.VolumeTypeVolume) {
		t.Errorf("gateway keeps Caddy's certificates outside a named volume: %+v", gw.Volumes)
	}
}

func hasVolume(s types.ServiceConfig, target, typ string) bool {
	for _, v := range s.Volumes {
		if v.Target == target && v.Type == typ {
			return true
		}
	}
	return false
}

// TestMissingPasswordRefused: without POSTGRES_PASSWORD compose refuses to
// start rather than run Postgres with no or a default password.
func TestMissingPasswordRefused(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root, ".env.example"))
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "POSTGRES_PASSWORD=") {
			kept = append(kept, line)
		}
	}
	envFile := filepath.Join(t.TempDir(), "env")
	if err := os.WriteFile(envFile, []byte(strings.Join(kept, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = loadProject(t, envFile)
	if err == nil || !strings.Contains(err.Error(), "POSTGRES_PASSWORD") {
		t.Fatalf("loading without POSTGRES_PASSWORD: err = %v, want a refusal naming POSTGRES_PASSWORD", err)
	}
}

func TestOnlyGatewayPublishesPorts(t *testing.T) {
	p := project(t)
	for name, s := range p.Services {
		if name == "gateway" {
			continue
		}
		if len(s.Ports) > 0 {
			t.Errorf("%s publishes %+v; only the gateway may", name, s.Ports)
		}
		if s.NetworkMode != "" {
			t.Errorf("%s uses network_mode %q, which bypasses the networks", name, s.NetworkMode)
		}
	}
	var targets []string
	for _, port := range service(t, p, "gateway").Ports {
		targets = append(targets, portProto(port.Target, port.Protocol))
	}
	want := []string{"443/tcp", "443/udp", "80/tcp"}
	if !slices.Equal(sorted(targets), want) {
		t.Errorf("gateway publishes %v, want %v", sorted(targets), want)
	}
}

func portProto(port uint32, proto string) string {
	if proto == "" {
		proto = "tcp"
	}
	return strconv.FormatUint(uint64(port), 10) + "/" + proto
}

// members maps each network to the services attached to it.
func members(p *types.Project) map[string][]string {
	m := map[string][]string{}
	for name, s := range p.Services {
		for n := range s.Networks {
			m[n] = append(m[n], name)
		}
	}
	for n := range m {
		sort.Strings(m[n])
	}
	return m
}

// TestNetworkIsolation: the core and the token service each share one
// network with the gateway alone, and believe forwarded identity only from
// that network's subnet; nothing but the gateway reaches the core's API.
func TestNetworkIsolation(t *testing.T) {
	p := project(t)
	m := members(p)
	for _, tc := range []struct{ svc, network string }{
		{"core", "core"},
		{"tokenservice", "tokens"},
	} {
		if got := m[tc.network]; !slices.Equal(got, sorted([]string{"gateway", tc.svc})) {
			t.Errorf("network %s joins %v, want only gateway and %s", tc.network, got, tc.svc)
		}
		nw, ok := p.Networks[tc.network]
		if !ok || len(nw.Ipam.Config) != 1 {
			t.Fatalf("network %s needs exactly one fixed subnet: %+v", tc.network, nw.Ipam)
		}
		subnet := nw.Ipam.Config[0].Subnet
		if _, _, err := net.ParseCIDR(subnet); err != nil {
			t.Errorf("network %s subnet %q: %v", tc.network, subnet, err)
		}
		s := service(t, p, tc.svc)
		if got := env(s, "TAXIWAY_TRUSTED_PROXIES"); got != subnet {
			t.Errorf("%s trusts proxies %q, want exactly the %s network %q", tc.svc, got, tc.network, subnet)
		}
	}
	// Every network the core is on may hold only the gateway, Postgres and
	// the one-shot migrate: the token service in particular must not share one.
	for n := range service(t, p, "core").Networks {
		for _, other := range m[n] {
			if !slices.Contains([]string{"core", "gateway", "postgres", "migrate"}, other) {
				t.Errorf("%s shares network %s with the core", other, n)
			}
		}
	}
	// Postgres is never on the gateway's networks.
	for n := range service(t, p, "postgres").Networks {
		if slices.Contains(m[n], "gateway") {
			t.Errorf("postgres shares network %s with the gateway", n)
		}
	}
	// Only the gateway's own network reaches outside; the rest are internal.
	for name, nw := range p.Networks {
		if nw.External {
			t.Errorf("network %s is external; the stack should own its networks", name)
		}
		if name == monitoringNetwork {
			continue // the monitoring profile's: TestMonitoringProfile
		}
		if !nw.Internal && !slices.Equal(m[name], []string{"gateway"}) {
			t.Errorf("network %s (services %v) is not internal", name, m[name])
		}
	}
	// The two trusted subnets must not overlap, or the token service's
	// network would count as the core's trusted proxies.
	a, b := p.Networks["core"].Ipam.Config[0].Subnet, p.Networks["tokens"].Ipam.Config[0].Subnet
	_, na, errA := net.ParseCIDR(a)
	_, nb, errB := net.ParseCIDR(b)
	if errA == nil && errB == nil && (na.Contains(nb.IP) || nb.Contains(na.IP)) {
		t.Errorf("subnets %s and %s overlap", a, b)
	}
}

// TestHealthchecks: every long-running service has one, run by its own
// binary (the images have no shell or wget), aimed at an address the service
// listens on according to its own environment.
func TestHealthchecks(t *testing.T) {
	p := project(t)
	// The gateway's checks its own site (caddymodule's taxii-healthcheck
	// reads TAXIWAY_GATEWAY_SITE), with no admin endpoint involved.
	if hc := service(t, p, "gateway").HealthCheck; hc == nil || !slices.Equal(hc.Test, []string{"CMD", "caddy", "taxii-healthcheck"}) {
		t.Errorf("gateway: health check %+v, want [CMD caddy taxii-healthcheck]", hc)
	}
	// Which variable holds the address each health check must reach.
	for svc, listenVar := range map[string]string{
		"core":         "TAXIWAY_CORE_OPS_LISTEN",
		"tokenservice": "TAXIWAY_TOKEN_OPS_LISTEN",
	} {
		s := service(t, p, svc)
		hc := s.HealthCheck
		if hc == nil || hc.Disable || len(hc.Test) < 2 {
			t.Errorf("%s: no health check", svc)
			continue
		}
		if hc.Test[0] != "CMD" {
			t.Errorf("%s: health check %v should be exec form (CMD), not a shell", svc, hc.Test)
		}
		if len(hc.Test) < 4 || hc.Test[1] != "taxiway" || hc.Test[2] != "healthcheck" {
			t.Errorf("%s: health check %v, want `taxiway healthcheck URL` (the image has no shell or wget)", svc, hc.Test)
			continue
		}
		var target *url.URL
		for _, arg := range hc.Test[3:] {
			if strings.HasPrefix(arg, "http://") {
				u, err := url.Parse(arg)
				if err != nil {
					t.Fatalf("%s: health check URL %q: %v", svc, arg, err)
				}
				target = u
			}
		}
		if target == nil {
			t.Errorf("%s: health check %v names no http:// URL", svc, hc.Test)
			continue
		}
		listen := env(s, listenVar)
		if bindVar, portVar, ok := strings.Cut(listenVar, ":"); ok {
			listen = net.JoinHostPort(env(s, bindVar), env(s, portVar))
		}
		host, port, err := net.SplitHostPort(listen)
		if err != nil {
			t.Errorf("%s: %s=%q is not host:port: %v", svc, listenVar, listen, err)
			continue
		}
		if target.Port() != port {
			t.Errorf("%s: health check port %s, but %s=%s", svc, target.Port(), listenVar, listen)
		}
		if !slices.Contains([]string{"0.0.0.0", "", "::", target.Hostname()}, host) {
			t.Errorf("%s: health check host %s does not reach %s=%s", svc, target.Hostname(), listenVar, listen)
		}
		if !net.ParseIP(target.Hostname()).IsLoopback() {
			t.Errorf("%s: health check should stay in the container (loopback), got %s", svc, target.Host)
		}
	}
	pg := service(t, p, "postgres")
	if pg.HealthCheck == nil || !slices.Contains(pg.HealthCheck.Test, "pg_isready") {
		t.Errorf("postgres: health check %+v, want pg_isready", pg.HealthCheck)
	}
	if pg.HealthCheck != nil && !slices.Contains(pg.HealthCheck.Test, env(pg, "POSTGRES_USER")) {
		t.Errorf("postgres: pg_isready should name the POSTGRES_USER %q", env(pg, "POSTGRES_USER"))
	}
}

// TestUpstreams: the gateway's upstreams and the database URL name the
// services and ports that actually listen.
func TestUpstreams(t *testing.T) {
	p := project(t)
	gw := service(t, p, "gateway")
	// Every replica of a scaled service: the gateway resolves the service
	// names itself (Caddyfile, TAXIWAY_UPSTREAMS=dns).
	if env(gw, "TAXIWAY_UPSTREAMS") != "dns" {
		t.Errorf("gateway TAXIWAY_UPSTREAMS=%q, want dns (docker compose --scale)", env(gw, "TAXIWAY_UPSTREAMS"))
	}
	for upstreamVar, tc := range map[string]struct{ svc, listenVar string }{
		"TAXIWAY_CORE_DNS":       {"core", "TAXIWAY_CORE_LISTEN"},
		"TAXIWAY_TOKEN_DNS":      {"tokenservice", "TAXIWAY_TOKEN_LISTEN"},
		"TAXIWAY_TOKEN_UPSTREAM": {"tokenservice", "TAXIWAY_TOKEN_LISTEN"},
	} {
		value := env(gw, upstreamVar)
		if strings.HasSuffix(upstreamVar, "_DNS") {
			value = strings.Join(strings.Fields(value), ":") // "name port"
		}
		host, port, err := net.SplitHostPort(value)
		if err != nil {
			t.Errorf("gateway %s=%q: %v", upstreamVar, env(gw, upstreamVar), err)
			continue
		}
		_, listenPort, _ := net.SplitHostPort(env(service(t, p, tc.svc), tc.listenVar))
		if host != tc.svc || port != listenPort {
			t.Errorf("gateway %s=%s:%s, but %s listens on port %q (%s)", upstreamVar, host, port, tc.svc, listenPort, tc.listenVar)
		}
	}
	for _, svc := range []string{"core", "tokenservice", "migrate"} {
		s := service(t, p, svc)
		u, err := url.Parse(env(s, "TAXIWAY_DATABASE_URL"))
		if err != nil || u.Hostname() != "postgres" || u.Port() != "5432" {
			t.Errorf("%s: TAXIWAY_DATABASE_URL %q should reach postgres:5432 (%v)", svc, env(s, "TAXIWAY_DATABASE_URL"), err)
			continue
		}
		if _, has := u.User.Password(); has {
			t.Errorf("%s: the database URL carries the password; it belongs in PGPASSWORD", svc)
		}
		pg := service(t, p, "postgres")
		if u.User.Username() != env(pg, "POSTGRES_USER") || strings.TrimPrefix(u.Path, "/") != env(pg, "POSTGRES_DB") {
			t.Errorf("%s: database URL user/db %s%s, postgres creates %s/%s", svc, u.User.Username(), u.Path, env(pg, "POSTGRES_USER"), env(pg, "POSTGRES_DB"))
		}
		if env(s, "PGPASSWORD") == "" || env(s, "PGPASSWORD") != env(pg, "POSTGRES_PASSWORD") {
			t.Errorf("%s: PGPASSWORD does not match postgres's POSTGRES_PASSWORD", svc)
		}
	}
}

func TestStartOrder(t *testing.T) {
	p := project(t)
	want := map[string]map[string]string{
		"migrate":      {"postgres": types.ServiceConditionHealthy},
		"tokenservice": {"postgres": types.ServiceConditionHealthy, "migrate": types.ServiceConditionCompletedSuccessfully},
		"core":         {"postgres": types.ServiceConditionHealthy, "migrate": types.ServiceConditionCompletedSuccessfully},
		"gateway":      {"core": types.ServiceConditionHealthy, "tokenservice": types.ServiceConditionHealthy},
		"postgres":     {},
	}
	for svc, deps := range want {
		s := service(t, p, svc)
		got := map[string]string{}
		for dep, d := range s.DependsOn {
			got[dep] = d.Condition
		}
		if len(got) != len(deps) {
			t.Errorf("%s depends on %v, want %v", svc, got, deps)
			continue
		}
		for dep, cond := range deps {
			if got[dep] != cond {
				t.Errorf("%s depends on %s with %q, want %q", svc, dep, got[dep], cond)
			}
		}
	}
	// A one-shot service that restarts would never "complete".
	if r := service(t, p, "migrate").Restart; r != "no" && r != "" {
		t.Errorf("migrate restart = %q, want no", r)
	}
	for _, svc := range []string{"postgres", "tokenservice", "core", "gateway"} {
		if r := service(t, p, svc).Restart; r != "unless-stopped" {
			t.Errorf("%s restart = %q, want unless-stopped", svc, r)
		}
	}
}

func TestHardening(t *testing.T) {
	for name, s := range withMonitoring(t).Services {
		if !s.ReadOnly {
			t.Errorf("%s: root filesystem is writable", name)
		}
		if !slices.Contains(s.SecurityOpt, "no-new-privileges:true") {
			t.Errorf("%s: security_opt %v lacks no-new-privileges:true", name, s.SecurityOpt)
		}
		if s.Privileged {
			t.Errorf("%s is privileged", name)
		}
		if !slices.Contains(s.CapDrop, "ALL") {
			t.Errorf("%s: cap_drop %v, want ALL", name, s.CapDrop)
		}
		if s.User == "root" || s.User == "0" {
			t.Errorf("%s runs as root", name)
		}
	}
	// Postgres starts as the official image's unprivileged user, not as
	// root dropping privileges (which would need capabilities).
	if u := service(t, project(t), "postgres").User; u != "postgres" {
		t.Errorf("postgres user = %q, want postgres", u)
	}
	// The images themselves switch to an unprivileged user.
	for _, df := range []string{"Dockerfile", "Dockerfile.gateway"} {
		user := ""
		for _, in := range instructions(t, df) {
			if in.cmd == "USER" {
				user = in.args
			}
		}
		if user == "" || user == "root" || strings.HasPrefix(user, "0") {
			t.Errorf("%s: final USER %q, want an unprivileged user", df, user)
		}
	}
}

// TestBindMountsExist: files mounted from the checkout are there.
func TestBindMountsExist(t *testing.T) {
	for name, s := range withMonitoring(t).Services {
		for _, v := range s.Volumes {
			if v.Type != types.VolumeTypeBind {
				continue
			}
			if _, err := os.Stat(v.Source); err != nil {
				t.Errorf("%s mounts %s, which is missing: %v", name, v.Source, err)
			}
			if !v.ReadOnly {
				t.Errorf("%s mounts %s writable", name, v.Source)
			}
		}
	}
}

// TestEnvExample: every variable docker-compose.yml interpolates is in
// .env.example with a comment, and .env.example holds nothing unused.
func TestEnvExample(t *testing.T) {
	compose, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	for _, m := range regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)`).FindAllStringSubmatch(string(compose), -1) {
		used[m[1]] = true
	}
	f, err := os.Open(filepath.Join(root, ".env.example"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	documented := map[string]bool{}
	prevComment := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(line, "#"):
			prevComment = true
			continue
		case line == "":
			prevComment = false
			continue
		}
		name, _, ok := strings.Cut(line, "=")
		if !ok {
			t.Errorf(".env.example: %q is not NAME=value", line)
			continue
		}
		documented[name] = true
		if !used[name] {
			t.Errorf(".env.example sets %s, which docker-compose.yml never uses", name)
		}
		// A variable is documented by the comment block right above it or
		// above the group of variables it belongs to.
		if !prevComment {
			t.Errorf(".env.example: %s has no comment above it", name)
		}
	}
	for name := range used {
		if !documented[name] {
			t.Errorf("docker-compose.yml uses ${%s}, which .env.example does not document", name)
		}
	}
}

// TestTaxiwayEnvAccepted: every TAXIWAY_* variable a service sets is one its
// subcommand reads, per its -h output.
func TestTaxiwayEnvAccepted(t *testing.T) {
	p := project(t)
	bin := taxiwayBinary(t)
	for _, name := range []string{"core", "tokenservice", "migrate"} {
		t.Run(name, func(t *testing.T) { checkTaxiwayEnv(t, bin, service(t, p, name)) })
	}
}

func checkTaxiwayEnv(t *testing.T, bin string, s types.ServiceConfig) {
	name := s.Name
	subs := subcommands(t, s)
	if len(subs) == 0 {
		t.Fatalf("%s runs no taxiway subcommand (entrypoint %v, command %v)", name, s.Entrypoint, s.Command)
	}
	// Optional settings are passed as "" when .env leaves them empty;
	// that must leave every default as it is (envOr's rule).
	var empty []string
	for v, val := range s.Environment {
		if val == nil || *val == "" {
			empty = append(empty, v+"=")
		}
	}
	accepted := map[string]bool{}
	for _, sub := range subs {
		usage := help(t, bin, sub)
		for _, v := range envVarRE.FindAllString(usage, -1) {
			accepted[v] = true
		}
		if len(empty) > 0 {
			if withEmpty := help(t, bin, sub, empty...); withEmpty != usage {
				t.Errorf("%s: setting %v changes `taxiway %s -h`:\n%s\nwant:\n%s", name, empty, sub, withEmpty, usage)
			}
		}
	}
	for v := range s.Environment {
		switch {
		case strings.HasPrefix(v, "TAXIWAY_"):
			if !accepted[v] {
				t.Errorf("%s sets %s, which `taxiway %s -h` does not mention", name, v, strings.Join(subs, "`/`taxiway "))
			}
		case v == "PGPASSWORD":
			// Read by pgx itself, as libpq does.
		default:
			t.Errorf("%s sets %s, which nothing in the taxiway image reads", name, v)
		}
	}
	if env(s, "TAXIWAY_DATABASE_URL") == "" {
		t.Errorf("%s has no TAXIWAY_DATABASE_URL", name)
	}
}

var taxiwayCmdRE = regexp.MustCompile(`(?:^|[\s;&|])(?:exec\s+)?taxiway\s+([a-z][a-z0-9-]*)`)

// subcommands lists the taxiway subcommands a service runs: its command
// with the image's `taxiway` entrypoint, or those named in a shell entrypoint.
func subcommands(t *testing.T, s types.ServiceConfig) []string {
	t.Helper()
	if len(s.Entrypoint) == 0 {
		if len(s.Command) == 0 {
			return []string{"core"} // the image's CMD
		}
		return []string{s.Command[0]}
	}
	var subs []string
	for _, m := range taxiwayCmdRE.FindAllStringSubmatch(strings.Join(s.Entrypoint, " "), -1) {
		subs = append(subs, m[1])
	}
	return subs
}

// The binaries, built once for the whole test binary (or by make test).
var bins struct {
	once             sync.Once
	dir              string
	taxiway, gateway string
	err              error
}

func binaries(t *testing.T) (taxiway, gateway string) {
	t.Helper()
	bins.once.Do(func() {
		if bins.dir, bins.err = os.MkdirTemp("", "taxiway-deploy-test"); bins.err != nil {
			return
		}
		if bins.taxiway, bins.err = testbin.Taxiway(root, bins.dir); bins.err != nil {
			return
		}
		bins.gateway, bins.err = testbin.Gateway(root, bins.dir)
	})
	if bins.err != nil {
		t.Fatal(bins.err)
	}
	return bins.taxiway, bins.gateway
}

// taxiwayBinary is ./cmd/taxiway.
func taxiwayBinary(t *testing.T) string {
	bin, _ := binaries(t)
	return bin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bins.dir != "" {
		os.RemoveAll(bins.dir)
	}
	os.Exit(code)
}

var envVarRE = regexp.MustCompile(`\bTAXIWAY_[A-Z0-9_]+`)

// help runs `taxiway SUB -h` with no TAXIWAY_* variables set but extraEnv,
// and returns its output.
func help(t *testing.T, bin, sub string, extraEnv ...string) string {
	t.Helper()
	cmd := exec.Command(bin, sub, "-h")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TAXIWAY_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, extraEnv...)
	out, err := cmd.CombinedOutput()
	if strings.Contains(string(out), "unknown command") {
		t.Fatalf("taxiway has no %q command yet:\n%s", sub, out)
	}
	if !strings.Contains(string(out), "-") {
		t.Fatalf("`taxiway %s -h` printed no flags (%v):\n%s", sub, err, out)
	}
	return string(out)
}

var (
	caddyEnvRE        = regexp.MustCompile(`\{\$([A-Za-z_][A-Za-z0-9_]*)(:[^}]*)?\}`)
	caddyRuntimeEnvRE = regexp.MustCompile(`\{env\.([A-Za-z_][A-Za-z0-9_]*)\}`)
)

// caddyfileVars: every variable the root Caddyfile reads, at adapt time
// ({$VAR}) or at run time ({env.VAR}), comments left out.
func caddyfileVars(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "Caddyfile"))
	if err != nil {
		t.Fatalf("reading the root Caddyfile: %v", err)
	}
	read := map[string]bool{} // every variable the Caddyfile reads
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		for _, m := range caddyEnvRE.FindAllStringSubmatch(line, -1) {
			read[m[1]] = true
		}
		for _, m := range caddyRuntimeEnvRE.FindAllStringSubmatch(line, -1) {
			read[m[1]] = true
		}
	}
	return read
}

// adaptWithEnv runs `caddy adapt` (bin) on the root Caddyfile with exactly
// env for its TAXIWAY_* variables (none of the test's own), fails the test
// if Caddy refuses it, and returns the JSON config. what names env in the
// failure.
func adaptWithEnv(t *testing.T, bin string, env types.MappingWithEquals, what string) []byte {
	t.Helper()
	cmd := exec.Command(bin, "adapt", "--config", "Caddyfile", "--adapter", "caddyfile")
	cmd.Dir = root
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TAXIWAY_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	for v, val := range env {
		if val != nil {
			cmd.Env = append(cmd.Env, v+"="+*val)
		}
	}
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("adapting the Caddyfile with %s: %v\n%s", what, err, stderr)
	}
	return out
}

// TestGatewayEnvMatchesCaddyfile: every TAXIWAY_* variable the gateway sets
// is read by the root Caddyfile, and the Caddyfile adapts with exactly the
// gateway's environment.
func TestGatewayEnvMatchesCaddyfile(t *testing.T) {
	read := caddyfileVars(t)
	gw := service(t, project(t), "gateway")
	for v := range gw.Environment {
		if strings.HasPrefix(v, "TAXIWAY_") && !read[v] {
			t.Errorf("gateway sets %s, which the Caddyfile never reads as {$%s}", v, v)
		}
	}
	// Caddy reads {$NAME:default} as "" when NAME is set but empty.
	for v, val := range gw.Environment {
		if val == nil || *val == "" {
			t.Errorf("gateway sets %s empty, which overrides the Caddyfile's default with nothing", v)
		}
	}
	// Caddy itself is the judge of the rest: adapting the Caddyfile with
	// exactly the gateway's environment must work (snippets chosen by env,
	// placeholders without defaults) and route to the compose services.
	_, gateway := binaries(t)
	out := adaptWithEnv(t, gateway, gw.Environment, "the gateway's compose environment")
	for _, dns := range []string{env(gw, "TAXIWAY_CORE_DNS"), env(gw, "TAXIWAY_TOKEN_DNS")} {
		name, port, _ := strings.Cut(dns, " ")
		if want := `"name":"` + name + `","port":"` + port + `"`; name == "" || !strings.Contains(string(out), want) {
			t.Errorf("the adapted config has no dynamic upstream %s", want)
		}
	}
}

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd, args string
}

func instructions(t *testing.T, dockerfile string) []instruction {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, dockerfile))
	if err != nil {
		t.Fatalf("reading %s: %v", dockerfile, err)
	}
	var out []instruction
	var cur strings.Builder
	for _, line := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") {
			continue
		}
		if strings.HasSuffix(trimmed, `\`) {
			cur.WriteString(strings.TrimSuffix(trimmed, `\`) + " ")
			continue
		}
		cur.WriteString(trimmed)
		full := strings.TrimSpace(cur.String())
		cur.Reset()
		if full == "" {
			continue
		}
		cmd, args, _ := strings.Cut(full, " ")
		out = append(out, instruction{strings.ToUpper(cmd), strings.TrimSpace(args)})
	}
	return out
}

// TestDockerfileCopySources: every file the Dockerfiles COPY from the build
// context exists and is not excluded by .dockerignore.
func TestDockerfileCopySources(t *testing.T) {
	ignored := dockerignore(t)
	for _, df := range []string{"Dockerfile", "Dockerfile.gateway"} {
		for _, in := range instructions(t, df) {
			if in.cmd != "COPY" && in.cmd != "ADD" {
				continue
			}
			var words []string
			fromStage := false
			for _, w := range strings.Fields(in.args) {
				if strings.HasPrefix(w, "--from=") {
					fromStage = true
				}
				if !strings.HasPrefix(w, "--") {
					words = append(words, w)
				}
			}
			if fromStage || len(words) < 2 {
				continue
			}
			for _, src := range words[:len(words)-1] {
				matches, err := filepath.Glob(filepath.Join(root, src))
				if err != nil || len(matches) == 0 {
					t.Errorf("%s: COPY source %s does not exist", df, src)
					continue
				}
				if src != "." && ignored(src) {
					t.Errorf("%s: COPY source %s is excluded by .dockerignore", df, src)
				}
			}
		}
	}
	// The context must leave out secrets and local state.
	for _, p := range []string{".env", ".data", ".git"} {
		if !ignored(p) {
			t.Errorf(".dockerignore does not exclude %s", p)
		}
	}
}

// dockerignore returns a matcher for .dockerignore's patterns (without
// exceptions, which the file does not use).
func dockerignore(t *testing.T) func(string) bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatalf("reading .dockerignore: %v", err)
	}
	var patterns []string
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "!") {
			t.Fatalf(".dockerignore exception %q: teach this test about exceptions first", line)
		}
		patterns = append(patterns, strings.TrimPrefix(line, "**/"))
	}
	return func(path string) bool {
		for _, pat := range patterns {
			for _, candidate := range []string{path, filepath.Base(path)} {
				if ok, _ := filepath.Match(pat, candidate); ok {
					return true
				}
			}
		}
		return false
	}
}

// TestGatewayBuildMatchesGoMod: Dockerfile.gateway builds this module's
// plugin with the Caddy version go.mod pins, and the module's root package
// (what xcaddy imports) registers the taxii_auth module.
func TestGatewayBuildMatchesGoMod(t *testing.T) {
	modPath, caddyVersion := goModInfo(t)
	var buildLine, caddyArg string
	for _, in := range instructions(t, "Dockerfile.gateway") {
		if in.cmd == "ARG" && strings.HasPrefix(in.args, "CADDY_VERSION=") {
			caddyArg = strings.TrimPrefix(in.args, "CADDY_VERSION=")
		}
		if in.cmd == "RUN" && strings.Contains(in.args, "xcaddy build") {
			buildLine = in.args
		}
	}
	if buildLine == "" {
		t.Fatal("Dockerfile.gateway runs no `xcaddy build`")
	}
	// @v0.0.0: with a version, `go get` takes the module from the
	// replacement alone instead of asking the module proxy for a list.
	if !strings.Contains(buildLine, "--with "+modPath+"@v0.0.0=. ") {
		t.Errorf("xcaddy build %q should use --with %s@v0.0.0=.", buildLine, modPath)
	}
	if !strings.Contains(buildLine, "xcaddy build ${CADDY_VERSION} ") {
		t.Errorf("xcaddy build %q should build ${CADDY_VERSION}", buildLine)
	}
	if caddyArg != caddyVersion {
		t.Errorf("Dockerfile.gateway builds Caddy %q, go.mod requires %q", caddyArg, caddyVersion)
	}
	// xcaddy adds `import _ "<module path>"`: the root package must exist
	// and pull in the module.
	cmd := exec.Command("go", "list", "-deps", modPath)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps %s (the package xcaddy imports): %v\n%s", modPath, err, out)
	}
	if !slices.Contains(strings.Fields(string(out)), modPath+"/caddymodule") {
		t.Errorf("package %s does not import %s/caddymodule, so the xcaddy build would lack taxii_auth", modPath, modPath)
	}
}

func goModInfo(t *testing.T) (modPath, caddyVersion string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 2 && f[0] == "module":
			modPath = f[1]
		case len(f) >= 2 && f[0] == "github.com/caddyserver/caddy/v2":
			caddyVersion = f[1]
		case len(f) >= 3 && f[0] == "require" && f[1] == "github.com/caddyserver/caddy/v2":
			caddyVersion = f[2]
		}
	}
	if modPath == "" || caddyVersion == "" {
		t.Fatalf("go.mod: module %q, caddy %q", modPath, caddyVersion)
	}
	return modPath, caddyVersion
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	sort.Strings(s)
	return s
}

// TestSealedKeysOverride: deploy/compose/sealed-keys.yml hands the token
// service a key file as a secret, at the path its variable names, and
// refuses to load without TOKEN_KEK_FILE.
func TestSealedKeysOverride(t *testing.T) {
	const override = "deploy/compose/sealed-keys.yml"
	example, err := os.ReadFile(filepath.Join(root, ".env.example"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	kek := filepath.Join(dir, "token-kek")
	if err := os.WriteFile(kek, []byte(strings.Repeat("ab", 32)+"\n"), 0o400); err != nil {
		t.Fatal(err)
	}
	envFile := filepath.Join(dir, "env")
	if err := os.WriteFile(envFile, append(example, []byte("\nTOKEN_KEK_FILE="+kek+"\n")...), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := loadProject(t, envFile, override)
	if err != nil {
		t.Fatalf("loading docker-compose.yml with %s: %v", override, err)
	}
	ts := service(t, p, "tokenservice")
	path := env(ts, "TAXIWAY_TOKEN_KEY_ENCRYPTION_KEY_FILE")
	if len(ts.Secrets) != 1 {
		t.Fatalf("tokenservice secrets = %+v, want the key file", ts.Secrets)
	}
	target := ts.Secrets[0].Target
	if target == "" {
		target = ts.Secrets[0].Source
	}
	if !strings.HasPrefix(target, "/") {
		target = "/run/secrets/" + target
	}
	if target != path {
		t.Errorf("the secret is mounted at %s, but TAXIWAY_TOKEN_KEY_ENCRYPTION_KEY_FILE=%s", target, path)
	}
	if got := p.Secrets[ts.Secrets[0].Source].File; got != kek {
		t.Errorf("secret file = %q, want TOKEN_KEK_FILE %q", got, kek)
	}
	// The rest of the stack is unchanged, and the variable is one the
	// token service reads.
	if base := service(t, project(t), "tokenservice"); len(ts.Environment) != len(base.Environment)+1 {
		t.Errorf("the override changes more than the key file: %v", ts.Environment)
	}
	checkTaxiwayEnv(t, taxiwayBinary(t), ts)

	if _, err := loadProject(t, filepath.Join(root, ".env.example"), override); err == nil || !strings.Contains(err.Error(), "TOKEN_KEK_FILE") {
		t.Errorf("loading %s without TOKEN_KEK_FILE: err = %v, want a refusal naming it", override, err)
	}
}

// TestSameStackAsLocal: compose runs the services on the ports `taxiway
// local` uses, with the same demo data and the same Caddyfile.
func TestSameStackAsLocal(t *testing.T) {
	abs, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	local := localstack.Defaults(abs)
	p := project(t)
	for listenVar, tc := range map[string]struct {
		svc  string
		port int
	}{
		"TAXIWAY_CORE_LISTEN":      {"core", local.CorePort},
		"TAXIWAY_CORE_OPS_LISTEN":  {"core", local.CoreOpsPort},
		"TAXIWAY_TOKEN_LISTEN":     {"tokenservice", local.TokenPort},
		"TAXIWAY_TOKEN_OPS_LISTEN": {"tokenservice", local.TokenOpsPort},
	} {
		addr := env(service(t, p, tc.svc), listenVar)
		if _, port, _ := net.SplitHostPort(addr); port != strconv.Itoa(tc.port) {
			t.Errorf("%s %s=%s, the local stack uses port %d", tc.svc, listenVar, addr, tc.port)
		}
	}
	var seed string
	for _, v := range service(t, p, "migrate").Volumes {
		if v.Type == types.VolumeTypeBind {
			seed = v.Source
		}
	}
	if seed != local.SeedFile {
		t.Errorf("migrate syncs %s, the local stack %s", seed, local.SeedFile)
	}
	var caddyfile string
	for _, in := range instructions(t, "Dockerfile.gateway") {
		if f := strings.Fields(in.args); in.cmd == "COPY" && len(f) == 2 && strings.HasSuffix(f[1], "/Caddyfile") {
			caddyfile = filepath.Join(abs, f[0])
		}
	}
	if caddyfile != local.Caddyfile {
		t.Errorf("the gateway image runs %q, the local stack %s", caddyfile, local.Caddyfile)
	}
}

// TestBaseImages: the Dockerfiles take their base images as arguments whose
// defaults are the official images, the compose file passes the same
// defaults, and no Dockerfile pulls a frontend image (`# syntax=`).
func TestBaseImages(t *testing.T) {
	want := map[string]string{
		"BUILD_IMAGE":   "golang:",
		"RUNTIME_IMAGE": "gcr.io/distroless/static-debian12:nonroot",
	}
	p := project(t)
	for _, df := range []string{"Dockerfile", "Dockerfile.gateway"} {
		b, err := os.ReadFile(filepath.Join(root, df))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(strings.ToLower(string(b)), "# syntax=") {
			t.Errorf("%s has a `# syntax=` line, which pulls a frontend image from a registry", df)
		}
		defaults := map[string]string{}
		var froms []string
		for _, in := range instructions(t, df) {
			if name, def, ok := strings.Cut(in.args, "="); in.cmd == "ARG" && ok {
				defaults[name] = def
			}
			if in.cmd == "FROM" {
				froms = append(froms, strings.Fields(in.args)[0])
			}
		}
		if len(froms) != 2 || froms[0] != "${BUILD_IMAGE}" || froms[1] != "${RUNTIME_IMAGE}" {
			t.Errorf("%s: FROM %v, want ${BUILD_IMAGE} then ${RUNTIME_IMAGE}", df, froms)
		}
		for arg, prefix := range want {
			if !strings.HasPrefix(defaults[arg], prefix) {
				t.Errorf("%s: ARG %s=%q, want the official %s…", df, arg, defaults[arg], prefix)
			}
		}
		for _, svc := range p.Services {
			if svc.Build == nil || svc.Build.Dockerfile != df {
				continue
			}
			for arg := range want {
				if v := svc.Build.Args[arg]; v == nil || *v != defaults[arg] {
					t.Errorf("%s builds %s with %s=%v, the Dockerfile's default is %q", svc.Name, df, arg, v, defaults[arg])
				}
			}
		}
	}
	if img := service(t, p, "postgres").Image; img != "postgres:15-bookworm" {
		t.Errorf("postgres image %q, want the official postgres:15-bookworm", img)
	}
}

// TestGoVersion: the builder images' Go is the one go.mod asks for.
func TestGoVersion(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(b)
	if m == nil {
		t.Fatal("go.mod has no go directive")
	}
	for _, df := range []string{"Dockerfile", "Dockerfile.gateway"} {
		found := false
		for _, in := range instructions(t, df) {
			if in.cmd == "ARG" && strings.HasPrefix(in.args, "BUILD_IMAGE=") {
				found = true
				if v := strings.TrimPrefix(in.args, "BUILD_IMAGE="); v != "golang:"+string(m[1])+"-bookworm" {
					t.Errorf("%s builds with %s, go.mod says go %s", df, v, m[1])
				}
			}
		}
		if !found {
			t.Errorf("%s has no ARG BUILD_IMAGE", df)
		}
	}
}

// TestGatewayAdminAPIPrivate: the compose gateway's Caddy admin API is off
// or a Unix socket only its user may open, never TCP: whatever reaches it
// can load a config that reads TAXIWAY_IDENTITY_KEY.
func TestGatewayAdminAPIPrivate(t *testing.T) {
	admin := env(service(t, project(t), "gateway"), "TAXIWAY_GATEWAY_ADMIN")
	if admin != "off" && !(strings.HasPrefix(admin, "unix/") && strings.HasSuffix(admin, "|0600")) {
		t.Errorf("TAXIWAY_GATEWAY_ADMIN=%q, want off or unix/PATH|0600", admin)
	}
}
