package deploy_test

// TestDashboardAndAlertsUseRealMetrics starts the clustered stack (one of
// each part, a Postgres primary with a hot standby the core reads from),
// drives TAXII and login traffic through it, scrapes every part the way
// Prometheus does, and fails if the dashboard or the alert rules use a
// metric name or a label that no part exports.

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	dto "github.com/prometheus/client_model/go"

	"github.com/taxiway/taxiway/cmd/taxiway/localstack"
)

const (
	taxiiType   = "application/taxii+json;version=2.1"
	demoObjects = "/api1/collections/edaca48c-eae6-47e0-82b3-18a87ff3692f/objects/"
)

// exported holds what a scrape showed of each sample name (histograms and
// summaries flattened into _bucket, _sum and _count, as Prometheus stores
// them): the label names and values its series carry, and its HELP text.
type exported map[string]*series

type series struct {
	labels map[string]map[string]bool // name -> values seen
	help   string
}

// targetLabels are the labels Prometheus adds to every scraped series.
var targetLabels = []string{"job", "instance"}

func (e exported) add(name, help string, labels []*dto.LabelPair, extra ...string) {
	s := e[name]
	if s == nil {
		s = &series{labels: map[string]map[string]bool{}, help: help}
		e[name] = s
	}
	see := func(label, value string) {
		if s.labels[label] == nil {
			s.labels[label] = map[string]bool{}
		}
		if value != "" {
			s.labels[label][value] = true
		}
	}
	for _, l := range labels {
		see(l.GetName(), l.GetValue())
	}
	for _, l := range append(extra, targetLabels...) {
		see(l, "")
	}
}

// hasLabel reports whether name's series carry label.
func (e exported) hasLabel(name, label string) bool {
	s := e[name]
	return s != nil && s.labels[label] != nil
}

// knowsValue reports whether value of label is one the metric can take: a
// scrape showed it, its HELP text lists it (outcomes the traffic does not
// provoke, such as result "unavailable"), or it is a status code.
func (e exported) knowsValue(name, label, value string) bool {
	s := e[name]
	if s == nil {
		return false
	}
	if s.labels[label][value] || label == "code" || label == "job" || label == "instance" {
		return true
	}
	return regexp.MustCompile(`\b` + regexp.QuoteMeta(value) + `\b`).MatchString(s.help)
}

// scrape reads one /metrics answer into e.
func (e exported) scrape(t *testing.T, target string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, target, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("scraping %s: %v", target, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("scraping %s: %s", target, res.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatalf("parsing %s: %v", target, err)
	}
	for name, f := range families {
		help := f.GetHelp()
		for _, m := range f.GetMetric() {
			switch f.GetType() {
			case dto.MetricType_HISTOGRAM:
				e.add(name+"_bucket", help, m.GetLabel(), "le")
				e.add(name+"_sum", help, m.GetLabel())
				e.add(name+"_count", help, m.GetLabel())
			case dto.MetricType_SUMMARY:
				e.add(name, help, m.GetLabel(), "quantile")
				e.add(name+"_sum", help, m.GetLabel())
				e.add(name+"_count", help, m.GetLabel())
			default:
				e.add(name, help, m.GetLabel())
			}
		}
	}
}

func TestDashboardAndAlertsUseRealMetrics(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the clustered stack")
	}
	t.Parallel() // the other tests here hardly use the CPU it waits on
	c := startMonitoredCluster(t)
	front := c.FrontURL()
	driveTraffic(t, front)

	have := exported{}
	// up is Prometheus' own, one per target.
	have.add("up", "1 if the target answered its scrape", nil)
	have.scrape(t, c.OpsURL(localstack.Core, 1)+"/metrics")
	have.scrape(t, c.OpsURL(localstack.TokenService, 1)+"/metrics")
	have.scrape(t, c.OpsURL(localstack.Gateway, 1)+"/metrics")

	uses := append(ruleQueries(t), dashboardQueries(t)...)
	if len(uses) < 20 {
		t.Fatalf("only %d queries found in the rules and the dashboard", len(uses))
	}
	for _, q := range uses {
		for _, problem := range missingMetrics(q.expr, have) {
			t.Errorf("%s: %s", q.where, problem)
		}
	}
}

// startMonitoredCluster starts the clustered stack with one replica of each
// part, on free loopback ports, and stops it when the test ends.
func startMonitoredCluster(t *testing.T) *localstack.Cluster {
	t.Helper()
	taxiway, gateway := binaries(t)
	tmp, err := os.MkdirTemp("", "taxiway-monitoring-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })
	if err := os.Chmod(tmp, 0o755); err != nil { // Postgres may run as the postgres user
		t.Fatal(err)
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	cfg := localstack.ClusterDefaults(abs)
	cfg.DataDir = filepath.Join(tmp, "data")
	cfg.TaxiwayBin, cfg.GatewayBin = taxiway, gateway
	cfg.Replicas = 1
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for attempt := 0; ; attempt++ {
		ports, err := localstack.FreePorts(8)
		if err != nil {
			t.Fatal(err)
		}
		cfg.FrontPort, cfg.GatewayPort, cfg.GatewayOpsPort, cfg.TokenLBPort = ports[0], ports[1], ports[2], ports[3]
		cfg.CorePort, cfg.CoreOpsPort, cfg.TokenPort, cfg.TokenOpsPort = ports[4], ports[5], ports[6], ports[7]
		c, err := localstack.StartCluster(ctx, cfg)
		if err == nil {
			t.Cleanup(func() {
				if err := c.Stop(); err != nil {
					t.Errorf("stopping the cluster: %v", err)
				}
			})
			return c
		}
		// A port free on 127.0.0.1 may be taken on another loopback address.
		if attempt < 3 && strings.Contains(err.Error(), "is in use") {
			continue
		}
		t.Fatalf("starting the cluster: %v", err)
	}
}

// driveTraffic does what TAXII clients and people do: log in, read and write
// with Bearer and Basic, page, and mistype passwords (last, since enough of
// them rate-limit the demo account from this address).
func driveTraffic(t *testing.T, front string) {
	t.Helper()
	client := &http.Client{Timeout: 10 * time.Second}
	do := func(method, path, auth, ctype, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(method, front+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		req.Header.Set("Accept", taxiiType)
		res, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	login := func(user, password string) (int, string) {
		return do(http.MethodPost, "/management/auth", "", "application/x-www-form-urlencoded",
			url.Values{"username": {user}, "password": {password}}.Encode())
	}
	code, body := login("test", "test")
	if code != http.StatusOK {
		t.Fatalf("login: %d %s", code, body)
	}
	token, _, _ := strings.Cut(strings.TrimPrefix(body, `{"token":"`), `"`)
	bearer := "Bearer " + token
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("test:test"))

	for i := range 3 {
		envelope := fmt.Sprintf(`{"objects":[{"type":"indicator","spec_version":"2.1","id":"indicator--%08d-0000-4000-8000-000000000000",`+
			`"created":"2026-01-01T00:00:00.000Z","modified":"2026-01-01T00:00:00.000Z","pattern":"[ipv4-addr:value = '203.0.113.%d']",`+
			`"pattern_type":"stix","valid_from":"2026-01-01T00:00:00Z"}]}`, time.Now().UnixNano()%1e8+int64(i), i)
		if code, body := do(http.MethodPost, demoObjects, bearer, taxiiType, envelope); code != http.StatusAccepted {
			t.Fatalf("add objects: %d %s", code, body)
		}
	}
	for _, auth := range []string{bearer, basic, basic} { // the second Basic one is a cache hit
		if code, body := do(http.MethodGet, demoObjects+"?limit=2", auth, "", ""); code != http.StatusOK {
			t.Fatalf("get objects: %d %s", code, body)
		}
	}
	if code, _ := do(http.MethodGet, "/api1/collections/edaca48c-eae6-47e0-82b3-18a87ff3692f/manifest/", bearer, "", ""); code != http.StatusOK {
		t.Fatalf("get manifest: %d", code)
	}
	if code, _ := do(http.MethodGet, "/taxii2/", "", "", ""); code != http.StatusUnauthorized {
		t.Fatalf("discovery without credentials: %d", code)
	}
	if code, _ := do(http.MethodGet, "/taxii2/", "Bearer not-a-token", "", ""); code != http.StatusUnauthorized {
		t.Fatalf("discovery with a bad token: %d", code)
	}
	wrongBasic := "Basic " + base64.StdEncoding.EncodeToString([]byte("test:wrong"))
	limited := false
	for i := 0; i < 30 && !limited; i++ {
		code, _ := login("test", fmt.Sprint("wrong-", i))
		if code == http.StatusTooManyRequests {
			limited = true
		}
		do(http.MethodGet, "/taxii2/", wrongBasic, "", "")
	}
	if !limited {
		t.Fatal("30 wrong passwords never met the rate limit")
	}
	if code, _ := login("nobody-here", "x"); code != http.StatusUnauthorized && code != http.StatusTooManyRequests {
		t.Fatalf("unknown user: %d", code)
	}
}
