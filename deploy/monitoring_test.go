package deploy_test

// The alert rules and the Grafana dashboard, checked without a running
// stack: promtool checks and unit-tests the rules, every alert has a unit
// test and a runbook section in README, and the dashboard is one Grafana
// imports as is, with every query valid PromQL filtered by instance.

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"go.yaml.in/yaml/v3"
)

var alertTestsFile = filepath.Join(root, "deploy", "prometheus", "taxiway-alerts_test.yml")

// promtool runs Prometheus' promtool (scripts/ensure-tools.sh installs it).
func promtool(t *testing.T, args ...string) {
	t.Helper()
	bin, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool is missing: run scripts/ensure-tools.sh (Debian's prometheus package ships it)")
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = filepath.Dir(alertRulesFile)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func TestAlertRulesPassPromtool(t *testing.T) {
	promtool(t, "check", "config", "prometheus.yml") // and the rule files it loads
	promtool(t, "check", "rules", filepath.Base(alertRulesFile))
	promtool(t, "test", "rules", filepath.Base(alertTestsFile))
}

// githubAnchor is the anchor GitHub gives a README heading.
func githubAnchor(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ' || r == '-':
			b.WriteRune('-')
		case r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
		}
	}
	return b.String()
}

func readmeAnchors(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	inCode := false
	for line := range strings.Lines(string(b)) {
		if strings.HasPrefix(line, "```") {
			inCode = !inCode
		}
		if h, ok := strings.CutPrefix(line, "#"); ok && !inCode {
			anchors[githubAnchor(strings.TrimLeft(h, "#"))] = true
		}
	}
	return anchors
}

// TestEveryAlertIsDocumentedAndTested: each alert has a severity, a summary,
// a description and a runbook link to a README section that exists, and
// the unit tests expect it to fire at least once.
func TestEveryAlertIsDocumentedAndTested(t *testing.T) {
	anchors := readmeAnchors(t)
	b, err := os.ReadFile(alertTestsFile)
	if err != nil {
		t.Fatal(err)
	}
	var tests struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string `yaml:"alertname"`
				ExpAlerts []any  `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		} `yaml:"tests"`
	}
	if err := yaml.Unmarshal(b, &tests); err != nil {
		t.Fatal(err)
	}
	fires := map[string]bool{}
	for _, tc := range tests.Tests {
		for _, at := range tc.AlertRuleTest {
			if len(at.ExpAlerts) > 0 {
				fires[at.Alertname] = true
			}
		}
	}
	n := 0
	for _, g := range readAlertRules(t).Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			n++
			if s := r.Labels["severity"]; s != "page" && s != "warning" {
				t.Errorf("%s: severity %q, want page or warning", r.Alert, s)
			}
			for _, a := range []string{"summary", "description"} {
				if r.Annotations[a] == "" {
					t.Errorf("%s: no %s", r.Alert, a)
				}
			}
			anchor, ok := strings.CutPrefix(r.Annotations["runbook_url"], "README.md#")
			if !ok || !anchors[anchor] {
				t.Errorf("%s: runbook_url %q is not a README section", r.Alert, r.Annotations["runbook_url"])
			}
			if anchor != strings.ToLower(r.Alert) {
				t.Errorf("%s: runbook anchor %q, want #%s", r.Alert, anchor, strings.ToLower(r.Alert))
			}
			if !fires[r.Alert] {
				t.Errorf("%s: no unit test expects it to fire", r.Alert)
			}
		}
	}
	if n == 0 {
		t.Fatal("no alerts")
	}
}

// grafanaVarRE finds the variables a query uses.
var grafanaVarRE = regexp.MustCompile(`\$\{?[A-Za-z_]+`)

// TestDashboardImportable: the JSON Grafana imports or provisions as is: a
// current schema, a data-source variable every panel and query uses (no
// data-source id of one installation), an instance variable every series
// selector filters on, unique panel ids, and PromQL in every query.
func TestDashboardImportable(t *testing.T) {
	d := readDashboard(t)
	if d.SchemaVersion < 36 {
		t.Errorf("schemaVersion %d: Grafana 9 and later expect 36 or more (data sources by uid)", d.SchemaVersion)
	}
	if d.UID == "" || d.Title == "" {
		t.Error("the dashboard needs a uid and a title (provisioning keys on the uid)")
	}
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
	}
	if vars["datasource"] != "datasource" || vars["instance"] != "query" {
		t.Fatalf("variables %v: want datasource (a data-source variable) and instance (a query)", vars)
	}
	for _, v := range d.Templating.List {
		if v.Type == "query" && (v.Datasource == nil || v.Datasource.UID != "${datasource}") {
			t.Errorf("variable %s does not query ${datasource}", v.Name)
		}
	}
	ids := map[int]bool{}
	queries := 0
	for _, p := range allPanels(d.Panels) {
		if ids[p.ID] {
			t.Errorf("panel id %d twice", p.ID)
		}
		ids[p.ID] = true
		if p.GridPos["w"] == 0 || p.GridPos["h"] == 0 {
			t.Errorf("panel %q has no size", p.Title)
		}
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q does not use ${datasource}", p.Title)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			queries++
			if tg.Datasource == nil || tg.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q query %s does not use ${datasource}", p.Title, tg.RefID)
			}
			for _, v := range grafanaVarRE.FindAllString(tg.Expr, -1) {
				name := strings.TrimLeft(v, "${")
				if _, ok := vars[name]; !ok && !strings.HasPrefix(name, "__") {
					t.Errorf("panel %q query %s uses $%s, which is not a variable", p.Title, tg.RefID, name)
				}
			}
			e, err := parsePromQL(grafanaVars.Replace(tg.Expr))
			if err != nil {
				t.Errorf("panel %q query %s is not PromQL: %v\n%s", p.Title, tg.RefID, err, tg.Expr)
				continue
			}
			for _, vs := range selectors(e) {
				filtered := false
				for _, m := range vs.LabelMatchers {
					filtered = filtered || (m.Name == "instance" && m.Type == labels.MatchRegexp && m.Value == ".*")
				}
				if !filtered {
					t.Errorf("panel %q query %s: %s is not filtered by instance=~\"$instance\"", p.Title, tg.RefID, vs)
				}
			}
		}
	}
	if queries < 20 {
		t.Errorf("only %d queries", queries)
	}
}
