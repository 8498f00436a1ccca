package deploy_test

// The PromQL the dashboard and the alert rules hold, parsed with
// Prometheus' own parser, and the metric names and labels it uses.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"
)

var (
	alertRulesFile = filepath.Join(root, "deploy", "prometheus", "taxiway-alerts.yml")
	dashboardFile  = filepath.Join(root, "deploy", "grafana", "taxiway.json")
)

// query is one PromQL expression and where it was found.
type query struct {
	where, expr string
}

func parsePromQL(expr string) (parser.Expr, error) {
	return parser.NewParser(parser.Options{}).ParseExpr(expr)
}

// alertRules is the part of a Prometheus rule file the tests read.
type alertRules struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Record      string            `yaml:"record"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func readAlertRules(t *testing.T) alertRules {
	t.Helper()
	b, err := os.ReadFile(alertRulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var r alertRules
	if err := yaml.Unmarshal(b, &r); err != nil {
		t.Fatalf("%s: %v", alertRulesFile, err)
	}
	return r
}

func ruleQueries(t *testing.T) []query {
	t.Helper()
	var qs []query
	for _, g := range readAlertRules(t).Groups {
		for _, r := range g.Rules {
			qs = append(qs, query{where: "alert " + r.Alert + r.Record, expr: r.Expr})
		}
	}
	return qs
}

// dashboard is the part of a Grafana dashboard the tests read. Rows hold
// their panels while collapsed.
type dashboard struct {
	SchemaVersion int            `json:"schemaVersion"`
	UID           string         `json:"uid"`
	Title         string         `json:"title"`
	Panels        []dashPanel    `json:"panels"`
	Templating    dashTemplating `json:"templating"`
}

type dashPanel struct {
	ID         int             `json:"id"`
	Title      string          `json:"title"`
	Type       string          `json:"type"`
	Datasource *dashDatasource `json:"datasource"`
	Targets    []dashTarget    `json:"targets"`
	Panels     []dashPanel     `json:"panels"`
	GridPos    map[string]int  `json:"gridPos"`
}

type dashDatasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type dashTarget struct {
	RefID        string          `json:"refId"`
	Expr         string          `json:"expr"`
	LegendFormat string          `json:"legendFormat"`
	Datasource   *dashDatasource `json:"datasource"`
}

type dashTemplating struct {
	List []struct {
		Name       string          `json:"name"`
		Type       string          `json:"type"`
		Query      any             `json:"query"`
		Definition string          `json:"definition"`
		Datasource *dashDatasource `json:"datasource"`
	} `json:"list"`
}

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return d
}

// allPanels flattens rows.
func allPanels(ps []dashPanel) []dashPanel {
	var out []dashPanel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, allPanels(p.Panels)...)
	}
	return out
}

// grafanaVars stand in for the dashboard's variables and Grafana's own, so
// that a panel's query is PromQL.
var grafanaVars = strings.NewReplacer(
	"$__rate_interval", "5m", "${__rate_interval}", "5m",
	"$__interval", "1m", "${__interval}", "1m",
	"$__range", "1h", "${__range}", "1h",
	"${instance:regex}", ".*", "${instance}", ".*", "$instance", ".*",
)

// labelValuesQuery is the selector inside a template variable's
// label_values(selector, label), and the label.
func labelValuesQuery(q string) (selector, label string, err error) {
	inner, ok := strings.CutPrefix(strings.TrimSpace(q), "label_values(")
	if !ok || !strings.HasSuffix(inner, ")") {
		return "", "", fmt.Errorf("not label_values(selector, label): %q", q)
	}
	inner = strings.TrimSuffix(inner, ")")
	i := strings.LastIndex(inner, ",")
	if i < 0 {
		return "", "", fmt.Errorf("label_values without a label: %q", q)
	}
	return strings.TrimSpace(inner[:i]), strings.TrimSpace(inner[i+1:]), nil
}

func dashboardQueries(t *testing.T) []query {
	t.Helper()
	d := readDashboard(t)
	var qs []query
	for _, p := range allPanels(d.Panels) {
		for _, tg := range p.Targets {
			qs = append(qs, query{where: fmt.Sprintf("panel %q target %s", p.Title, tg.RefID), expr: grafanaVars.Replace(tg.Expr)})
		}
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		sel, label, err := labelValuesQuery(v.Definition)
		if err != nil {
			t.Fatalf("variable %s: %v", v.Name, err)
		}
		// The label must exist on the selected series: count by it.
		qs = append(qs, query{where: "variable " + v.Name, expr: fmt.Sprintf("count by (%s) (%s)", label, grafanaVars.Replace(sel))})
	}
	return qs
}

// selectorName is the metric a vector selector reads.
func selectorName(vs *parser.VectorSelector) string {
	if vs.Name != "" {
		return vs.Name
	}
	for _, m := range vs.LabelMatchers {
		if m.Name == model.MetricNameLabel && m.Type == labels.MatchEqual {
			return m.Value
		}
	}
	return ""
}

// selectors are the vector selectors under n.
func selectors(n parser.Node) []*parser.VectorSelector {
	var out []*parser.VectorSelector
	parser.Inspect(n, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok {
			out = append(out, vs)
		}
		return nil
	})
	return out
}

// missingMetrics lists what expr uses that have does not hold: metric
// names, labels matched on, and labels aggregated or matched by.
func missingMetrics(expr string, have exported) []string {
	e, err := parsePromQL(expr)
	if err != nil {
		return []string{fmt.Sprintf("does not parse: %v", err)}
	}
	var problems []string
	// labelsOn reports whether some series under n carries label.
	labelsOn := func(n parser.Node, label string) bool {
		for _, vs := range selectors(n) {
			if have.hasLabel(selectorName(vs), label) {
				return true
			}
		}
		return false
	}
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		switch n := n.(type) {
		case *parser.VectorSelector:
			name := selectorName(n)
			if have[name] == nil {
				problems = append(problems, fmt.Sprintf("metric %q is exported by no part", name))
				return nil
			}
			for _, m := range n.LabelMatchers {
				switch {
				case m.Name == model.MetricNameLabel:
				case !have.hasLabel(name, m.Name):
					problems = append(problems, fmt.Sprintf("metric %q has no label %q", name, m.Name))
				case m.Type == labels.MatchEqual && !have.knowsValue(name, m.Name, m.Value):
					problems = append(problems, fmt.Sprintf("metric %q never has %s=%q", name, m.Name, m.Value))
				}
			}
		case *parser.AggregateExpr:
			if n.Without {
				return nil
			}
			for _, l := range n.Grouping {
				if !labelsOn(n.Expr, l) {
					problems = append(problems, fmt.Sprintf("aggregation by %q: no series under it has that label", l))
				}
			}
		case *parser.BinaryExpr:
			if n.VectorMatching == nil || !n.VectorMatching.On {
				return nil
			}
			for _, l := range n.VectorMatching.MatchingLabels {
				if !labelsOn(n.LHS, l) || !labelsOn(n.RHS, l) {
					problems = append(problems, fmt.Sprintf("on(%s): a side of the operation lacks that label", l))
				}
			}
		}
		return nil
	})
	slices.Sort(problems)
	return slices.Compact(problems)
}
