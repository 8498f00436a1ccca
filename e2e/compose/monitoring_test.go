//go:build compose

package compose

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// monitoringUpBound is how long Prometheus may take, once started, to have
// scraped every part and evaluated every rule: one 15 s scrape and
// evaluation interval, and room for a slow machine.
const monitoringUpBound = 90 * time.Second

// monitoring brings up the monitoring profile's Prometheus beside the running
// stack, as `docker compose --profile monitoring up` does, and waits until it
// scrapes every job of deploy/prometheus/prometheus.yml ("up") and has loaded
// and evaluated every alert of deploy/prometheus/taxiway-alerts.yml without
// error; it runs as hardened as the rest. Grafana is left out: no registry
// here serves its image and Debian does not package it (deploy/'s tests check
// its provisioning against the compose file).
func (s *stack) monitoring(t *testing.T) {
	s.mustCompose(t, "--profile", "monitoring", "up", "-d", "--no-deps", "prometheus")
	jobs, alerts := monitoringConfig(t)
	base := "http://127.0.0.1:" + strconv.Itoa(s.prometheusPort)
	start := time.Now()
	var missing []string
	for time.Since(start) < monitoringUpBound {
		missing = prometheusMissing(base, jobs, alerts)
		if len(missing) == 0 {
			break
		}
		time.Sleep(2 * time.Second)
	}
	if len(missing) > 0 {
		out, _ := s.compose(t, "--profile", "monitoring", "logs", "--no-color", "--tail", "40", "prometheus")
		t.Fatalf("after %v, Prometheus still lacks: %s\n%s", monitoringUpBound, strings.Join(missing, "; "), out)
	}
	t.Logf("Prometheus scraped %d jobs and evaluated %d alerts %.1f s after its start", len(jobs), len(alerts), time.Since(start).Seconds())
	checkHardening(t)
	s.mustCompose(t, "--profile", "monitoring", "rm", "--stop", "--force", "prometheus")
}

// monitoringConfig reads the scrape jobs and the alert names the shipped
// configuration holds.
func monitoringConfig(t *testing.T) (jobs, alerts []string) {
	t.Helper()
	var cfg struct {
		ScrapeConfigs []struct {
			JobName string `yaml:"job_name"`
		} `yaml:"scrape_configs"`
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	for file, into := range map[string]any{"prometheus.yml": &cfg, "taxiway-alerts.yml": &rules} {
		b, err := os.ReadFile(filepath.Join(root, "deploy", "prometheus", file))
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.Unmarshal(b, into); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
	}
	for _, sc := range cfg.ScrapeConfigs {
		jobs = append(jobs, sc.JobName)
	}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert != "" {
				alerts = append(alerts, r.Alert)
			}
		}
	}
	if len(jobs) < 3 || len(alerts) == 0 {
		t.Fatalf("deploy/prometheus names %d jobs and %d alerts", len(jobs), len(alerts))
	}
	return jobs, alerts
}

// prometheusMissing asks Prometheus's API what of jobs (every target up) and
// alerts (loaded and evaluated, health ok) is not there yet.
func prometheusMissing(base string, jobs, alerts []string) []string {
	var targets struct {
		Data struct {
			ActiveTargets []struct {
				Labels    map[string]string `json:"labels"`
				Health    string            `json:"health"`
				LastError string            `json:"lastError"`
			} `json:"activeTargets"`
		} `json:"data"`
	}
	var rules struct {
		Data struct {
			Groups []struct {
				Rules []struct {
					Name      string `json:"name"`
					Type      string `json:"type"`
					Health    string `json:"health"`
					LastError string `json:"lastError"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	if err := getJSON(base+"/api/v1/targets", &targets); err != nil {
		return []string{err.Error()}
	}
	if err := getJSON(base+"/api/v1/rules", &rules); err != nil {
		return []string{err.Error()}
	}
	var missing []string
	up := map[string]bool{}
	for _, tg := range targets.Data.ActiveTargets {
		job := tg.Labels["job"]
		if tg.Health != "up" {
			missing = append(missing, fmt.Sprintf("target %s (%s) is %s %s", tg.Labels["instance"], job, tg.Health, tg.LastError))
			up[job] = false
		} else if _, seen := up[job]; !seen {
			up[job] = true
		}
	}
	for _, job := range jobs {
		if !up[job] {
			missing = append(missing, "job "+job+" not up")
		}
	}
	evaluated := map[string]bool{}
	for _, g := range rules.Data.Groups {
		for _, r := range g.Rules {
			if r.Type == "alerting" && r.Health == "ok" {
				evaluated[r.Name] = true
			} else if r.Health == "err" {
				missing = append(missing, "rule "+r.Name+" fails: "+r.LastError)
			}
		}
	}
	for _, a := range alerts {
		if !evaluated[a] {
			missing = append(missing, "alert "+a+" not evaluated")
		}
	}
	return missing
}

func getJSON(url string, into any) error {
	c := &http.Client{Timeout: 5 * time.Second}
	res, err := c.Get(url)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, res.Status)
	}
	return json.NewDecoder(res.Body).Decode(into)
}
