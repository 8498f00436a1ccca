package deploy_test

// The compose file's monitoring profile: Prometheus scrapes every part on
// the port that part listens on, over a network it shares with that part
// alone, and loads the rules; Grafana gets the data source and the
// dashboard; only the host's loopback sees either.

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
	"go.yaml.in/yaml/v3"
)

// monitoringNetwork is the profile's network with published ports.
const monitoringNetwork = "monitoring"

// withMonitoring is the compose project with the monitoring profile on.
func withMonitoring(t *testing.T) *types.Project {
	t.Helper()
	p, err := project(t).WithProfiles([]string{"monitoring"})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// prometheusConfig is the part of prometheus.yml the test reads.
type prometheusConfig struct {
	RuleFiles     []string `yaml:"rule_files"`
	ScrapeConfigs []struct {
		JobName       string `yaml:"job_name"`
		MetricsPath   string `yaml:"metrics_path"`
		StaticConfigs []struct {
			Targets []string `yaml:"targets"`
		} `yaml:"static_configs"`
	} `yaml:"scrape_configs"`
}

// mountOf is the bind mount of s at target, if any.
func mountOf(s types.ServiceConfig, target string) (types.ServiceVolumeConfig, bool) {
	for _, v := range s.Volumes {
		if v.Target == target && v.Type == types.VolumeTypeBind {
			return v, true
		}
	}
	return types.ServiceVolumeConfig{}, false
}

func readYAML(t *testing.T, path string, into any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, into); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func TestMonitoringProfile(t *testing.T) {
	if names := project(t).ServiceNames(); slices.Contains(names, "prometheus") || slices.Contains(names, "grafana") {
		t.Fatalf("monitoring runs without its profile: %v", names)
	}
	p := withMonitoring(t)
	prom, graf := service(t, p, "prometheus"), service(t, p, "grafana")
	for _, s := range []types.ServiceConfig{prom, graf} {
		if _, tag, ok := strings.Cut(s.Image, ":"); !ok || tag == "latest" {
			t.Errorf("%s: image %q, want a pinned version", s.Name, s.Image)
		}
		for _, port := range s.Ports {
			if port.HostIP != "127.0.0.1" {
				t.Errorf("%s publishes %d on %q, want the host's loopback only", s.Name, port.Target, port.HostIP)
			}
		}
	}

	// Prometheus' configuration and rules come from deploy/prometheus.
	cfgDir, ok := mountOf(prom, "/etc/prometheus")
	if !ok || !slices.Contains(prom.Command, "--config.file=/etc/prometheus/prometheus.yml") {
		t.Fatalf("prometheus: no deploy/prometheus at /etc/prometheus with its prometheus.yml (%v, %v)", prom.Volumes, prom.Command)
	}
	var pc prometheusConfig
	readYAML(t, filepath.Join(cfgDir.Source, "prometheus.yml"), &pc)
	if !slices.Equal(pc.RuleFiles, []string{filepath.Base(alertRulesFile)}) || filepath.Dir(alertRulesFile) != filepath.Join(root, "deploy", "prometheus") {
		t.Errorf("prometheus.yml loads rules %v, want %s beside it", pc.RuleFiles, filepath.Base(alertRulesFile))
	}

	// Every part is scraped, under the job name the rules use, on the port
	// it listens on, over a network only it and Prometheus are on.
	gw := service(t, p, "gateway")
	if bind := env(gw, "TAXIWAY_GATEWAY_OPS_BIND"); bind == "" || bind == "127.0.0.1" || bind == "localhost" {
		t.Errorf("gateway: TAXIWAY_GATEWAY_OPS_BIND=%q: Prometheus cannot reach its ops listener", bind)
	}
	gwPort := env(gw, "TAXIWAY_GATEWAY_OPS_PORT")
	if gwPort == "" {
		gwPort = "2019" // the Caddyfile's default
	}
	port := func(svc, listenVar string) string {
		_, port, err := net.SplitHostPort(env(service(t, p, svc), listenVar))
		if err != nil {
			t.Fatalf("%s %s: %v", svc, listenVar, err)
		}
		return port
	}
	want := map[string]string{
		"taxiway-gateway":      "gateway:" + gwPort,
		"taxiway-core":         "core:" + port("core", "TAXIWAY_CORE_OPS_LISTEN"),
		"taxiway-tokenservice": "tokenservice:" + port("tokenservice", "TAXIWAY_TOKEN_OPS_LISTEN"),
	}
	m := members(p)
	for _, sc := range pc.ScrapeConfigs {
		if sc.MetricsPath != "" && sc.MetricsPath != "/metrics" {
			t.Errorf("job %s scrapes %s", sc.JobName, sc.MetricsPath)
		}
		var targets []string
		for _, st := range sc.StaticConfigs {
			targets = append(targets, st.Targets...)
		}
		if w, ok := want[sc.JobName]; !ok || !slices.Equal(targets, []string{w}) {
			t.Errorf("job %s scrapes %v, want %q", sc.JobName, targets, w)
		}
		delete(want, sc.JobName)
		if len(targets) == 0 {
			continue
		}
		host, _, _ := strings.Cut(targets[0], ":")
		shared := false
		for n := range prom.Networks {
			if slices.Contains(m[n], host) {
				shared = true
			}
		}
		if !shared {
			t.Errorf("prometheus shares no network with %s", host)
		}
	}
	for job := range want {
		t.Errorf("prometheus.yml has no job %s", job)
	}
	for n := range prom.Networks {
		switch got := m[n]; {
		case n == monitoringNetwork:
			if !slices.Equal(got, []string{"grafana", "prometheus"}) {
				t.Errorf("network %s joins %v, want grafana and prometheus", n, got)
			}
		case len(got) != 2 || !p.Networks[n].Internal:
			t.Errorf("prometheus network %s joins %v (internal %t): want internal, Prometheus and one part", n, got, p.Networks[n].Internal)
		}
	}
	if !slices.Equal(sortedKeys(graf.Networks), []string{monitoringNetwork}) {
		t.Errorf("grafana is on %v, want only %s", sortedKeys(graf.Networks), monitoringNetwork)
	}

	// Grafana: the data source points at that Prometheus, the dashboard
	// provider at the folder the dashboard is mounted in.
	prov, ok := mountOf(graf, "/etc/grafana/provisioning")
	if !ok {
		t.Fatalf("grafana: no provisioning folder mounted: %v", graf.Volumes)
	}
	var ds struct {
		Datasources []struct {
			Type, URL string
		} `yaml:"datasources"`
	}
	readYAML(t, filepath.Join(prov.Source, "datasources", "prometheus.yml"), &ds)
	if len(ds.Datasources) != 1 || ds.Datasources[0].Type != "prometheus" || ds.Datasources[0].URL != "http://prometheus:9090" {
		t.Errorf("grafana data sources %+v, want the prometheus service", ds.Datasources)
	}
	var dp struct {
		Providers []struct {
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, filepath.Join(prov.Source, "dashboards", "taxiway.yml"), &dp)
	if len(dp.Providers) != 1 {
		t.Fatalf("grafana dashboard providers: %+v", dp.Providers)
	}
	dash, ok := mountOf(graf, filepath.Join(dp.Providers[0].Options.Path, "taxiway.json"))
	if !ok {
		t.Fatalf("grafana: the dashboard is not mounted in %s", dp.Providers[0].Options.Path)
	}
	if abs, _ := filepath.Abs(dashboardFile); dash.Source != abs {
		t.Errorf("grafana mounts %s as the dashboard, want %s", dash.Source, abs)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
