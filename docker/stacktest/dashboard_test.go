package stacktest

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// gpuMetrics are exported only on machines with a GPU: the only metrics
// the dashboard may query that a CPU-only Lumen does not export.
var gpuMetrics = []string{
	"lumen_gpu_utilization_ratio",
	"lumen_gpu_memory_used_bytes",
	"lumen_gpu_memory_total_bytes",
	"lumen_gpu_temperature_celsius",
	"lumen_gpu_power_watts",
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type panel struct {
	Title      string         `json:"title"`
	Type       string         `json:"type"`
	Datasource *datasourceRef `json:"datasource"`
	Targets    []struct {
		Expr       string         `json:"expr"`
		RefID      string         `json:"refId"`
		Exemplar   bool           `json:"exemplar"`
		Datasource *datasourceRef `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a row's panels
}

type dashboard struct {
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name       string         `json:"name"`
			Type       string         `json:"type"`
			Definition string         `json:"definition"`
			Datasource *datasourceRef `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
}

func loadDashboard(t testing.TB) dashboard {
	t.Helper()
	data, err := os.ReadFile(dockerPath(t, "grafana", "dashboards", "lumen.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("lumen.json: %v", err)
	}
	return d
}

// query is one PromQL expression of the dashboard and where it is.
type query struct {
	where    string
	expr     string
	ds       *datasourceRef
	exemplar bool // the panel shows exemplars for it
}

// queries are every panel target (rows included) and every query
// variable's label_values() metric, as PromQL.
func (d dashboard) queries() []query {
	var out []query
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				ds := tg.Datasource
				if ds == nil {
					ds = p.Datasource
				}
				out = append(out, query{where: fmt.Sprintf("panel %q target %s", p.Title, tg.RefID), expr: tg.Expr, ds: ds, exemplar: tg.Exemplar})
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		if m := labelValues.FindStringSubmatch(v.Definition); m != nil {
			// label_values(metric, label) is Grafana's; the selector is PromQL.
			out = append(out, query{where: "variable " + v.Name, expr: fmt.Sprintf("count by (%s) (%s)", m[2], m[1]), ds: v.Datasource})
		} else {
			out = append(out, query{where: "variable " + v.Name, expr: v.Definition, ds: v.Datasource})
		}
	}
	return out
}

var (
	labelValues = regexp.MustCompile(`^label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)$`)
	grafanaVar  = regexp.MustCompile(`\$\{(\w+)(?::\w+)?\}|\$(\w+)`)
)

// substitute replaces Grafana's variables as Grafana would before the
// query reaches Prometheus: interval variables by a duration, the
// dashboard's own variables (used in regex matchers) by ".*".
func substitute(expr string, vars []string) (string, error) {
	var bad []string
	out := grafanaVar.ReplaceAllStringFunc(expr, func(m string) string {
		sub := grafanaVar.FindStringSubmatch(m)
		name := sub[1] + sub[2]
		switch {
		case name == "__rate_interval" || name == "__interval" || name == "__range":
			return "5m"
		case slices.Contains(vars, name):
			return ".*"
		}
		bad = append(bad, m)
		return m
	})
	if len(bad) > 0 {
		return "", fmt.Errorf("unknown Grafana variables %v", bad)
	}
	return out, nil
}

func TestSubstituteGrafanaVariables(t *testing.T) {
	for _, tc := range []struct {
		have, want string
		wantErr    bool
	}{
		{`rate(x[$__rate_interval])`, `rate(x[5m])`, false},
		{`rate(x[${__interval}])`, `rate(x[5m])`, false},
		{`x{tenant=~"$tenant", m=~"${model:regex}"}`, `x{tenant=~".*", m=~".*"}`, false},
		{`x{a="$nope"}`, "", true},
	} {
		got, err := substitute(tc.have, []string{"tenant", "model"})
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("substitute(%q) = %q, %v; want %q (error %v)", tc.have, got, err, tc.want, tc.wantErr)
		}
	}
}

// selection is what one expression asks of the metrics.
type selection struct {
	metrics map[string]bool
	// labels named by matchers and by/without clauses, with the metrics
	// they apply to.
	labels map[string][]string
}

// selects parses expr with Prometheus's parser and collects the metric
// names it selects and the label names it relies on.
func selects(expr string) (selection, error) {
	e, err := parser.ParseExpr(expr)
	if err != nil {
		return selection{}, err
	}
	s := selection{metrics: map[string]bool{}, labels: map[string][]string{}}
	names := func(n parser.Node) []string {
		var out []string
		parser.Inspect(n, func(n parser.Node, _ []parser.Node) error {
			if vs, ok := n.(*parser.VectorSelector); ok {
				name := vs.Name
				for _, m := range vs.LabelMatchers {
					if m.Name == labels.MetricName && m.Type == labels.MatchEqual {
						name = m.Value
					}
				}
				if name != "" {
					out = append(out, name)
				}
			}
			return nil
		})
		return out
	}
	var inspectErr error
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		switch n := n.(type) {
		case *parser.VectorSelector:
			ms := names(n)
			if len(ms) == 0 {
				inspectErr = fmt.Errorf("selector %s names no metric", n)
				return nil
			}
			s.metrics[ms[0]] = true
			for _, m := range n.LabelMatchers {
				if m.Name != labels.MetricName {
					s.labels[m.Name] = append(s.labels[m.Name], ms[0])
				}
			}
		case *parser.AggregateExpr:
			for _, l := range n.Grouping {
				s.labels[l] = append(s.labels[l], names(n.Expr)...)
			}
		}
		return nil
	})
	return s, inspectErr
}

func TestSelects(t *testing.T) {
	s, err := selects(`sum by (le, tenant) (rate(a_bucket{outcome="x"}[5m])) / sum(b)`)
	if err != nil {
		t.Fatal(err)
	}
	var metrics []string
	for m := range s.metrics {
		metrics = append(metrics, m)
	}
	sort.Strings(metrics)
	if !slices.Equal(metrics, []string{"a_bucket", "b"}) {
		t.Errorf("metrics = %v", metrics)
	}
	for l, want := range map[string][]string{"le": {"a_bucket"}, "tenant": {"a_bucket"}, "outcome": {"a_bucket"}} {
		if !slices.Equal(s.labels[l], want) {
			t.Errorf("label %s applies to %v, want %v", l, s.labels[l], want)
		}
	}
	if _, err := selects(`rate(x[5m]`); err == nil {
		t.Error("unbalanced parenthesis parsed")
	}
}

// parsedQuery is a dashboard query and what it selects.
type parsedQuery struct {
	query
	selection
}

// dashboardSelections parses every query of the dashboard.
func dashboardSelections(t testing.TB) []parsedQuery {
	t.Helper()
	d := loadDashboard(t)
	var vars []string
	for _, v := range d.Templating.List {
		vars = append(vars, v.Name)
	}
	var out []parsedQuery
	for _, q := range d.queries() {
		expr, err := substitute(q.expr, vars)
		if err != nil {
			t.Errorf("%s: %v", q.where, err)
			continue
		}
		s, err := selects(expr)
		if err != nil {
			t.Errorf("%s: %q: %v", q.where, q.expr, err)
			continue
		}
		out = append(out, parsedQuery{q, s})
	}
	return out
}

func TestDashboardQueriesAreValidPromQL(t *testing.T) {
	d := loadDashboard(t)
	if d.UID != "lumen" || d.Title != "Lumen" {
		t.Errorf("dashboard uid %q title %q, want lumen / Lumen", d.UID, d.Title)
	}
	qs := d.queries()
	if len(qs) == 0 {
		t.Fatal("dashboard has no queries")
	}
	// Every query reads a provisioned Prometheus data source.
	sources := provisionedDatasources(t)
	for _, q := range qs {
		if q.ds == nil || sources[q.ds.UID].Type != "prometheus" || q.ds.Type != "prometheus" {
			t.Errorf("%s: data source %+v is not the provisioned Prometheus", q.where, q.ds)
		}
	}
	sels := dashboardSelections(t)
	if len(sels) != len(qs) {
		t.Fatalf("%d of %d queries parse", len(sels), len(qs))
	}
}

// The dashboard shows what the observability issue asks for.
func TestDashboardCoversTheIssue(t *testing.T) {
	used, exemplars := map[string]bool{}, map[string]bool{}
	for _, q := range dashboardSelections(t) {
		for m := range q.metrics {
			used[m] = true
			exemplars[m] = exemplars[m] || q.exemplar
		}
	}
	for topic, metrics := range map[string][]string{
		"request and error rate":    {"lumen_requests_total"},
		"end-to-end latency":        {"gen_ai_server_request_duration_seconds_bucket"},
		"TTFT":                      {"gen_ai_server_time_to_first_token_seconds_bucket"},
		"time per output token":     {"gen_ai_server_time_per_output_token_seconds_bucket"},
		"tokens per second, tenant": {"gen_ai_server_tokens_total"},
		"queue depth":               {"lumen_queue_depth_requests"},
		"active sequences":          {"lumen_active_sequences"},
		"batch size":                {"lumen_batch_size_sequences_sum", "lumen_batch_size_sequences_count"},
		"KV-cache use":              {"lumen_kv_cache_used_cells", "lumen_kv_cache_size_cells"},
		"prefix-cache hits":         {"lumen_prefix_cache_hits_total"},
		"GPU":                       gpuMetrics,
		"spans dropped":             {"lumen_spans_dropped_total"},
	} {
		for _, m := range metrics {
			if !used[m] {
				t.Errorf("%s: the dashboard does not query %s", topic, m)
			}
		}
	}
	// Latency panels offer exemplars: the link from a bucket to a trace.
	for _, m := range []string{"gen_ai_server_request_duration_seconds_bucket", "gen_ai_server_time_to_first_token_seconds_bucket", "gen_ai_server_time_per_output_token_seconds_bucket"} {
		if !exemplars[m] {
			t.Errorf("no panel shows exemplars for %s", m)
		}
	}
}

// provisionedDatasource is an entry of the Grafana datasources file.
type provisionedDatasource struct {
	Name     string `yaml:"name"`
	UID      string `yaml:"uid"`
	Type     string `yaml:"type"`
	Access   string `yaml:"access"`
	URL      string `yaml:"url"`
	Default  bool   `yaml:"isDefault"`
	Editable bool   `yaml:"editable"`
	JSONData struct {
		TimeInterval                string `yaml:"timeInterval"`
		ExemplarTraceIDDestinations []struct {
			Name          string `yaml:"name"`
			DatasourceUID string `yaml:"datasourceUid"`
		} `yaml:"exemplarTraceIdDestinations"`
	} `yaml:"jsonData"`
}

func provisionedDatasources(t testing.TB) map[string]provisionedDatasource {
	t.Helper()
	var f struct {
		APIVersion  int                     `yaml:"apiVersion"`
		Datasources []provisionedDatasource `yaml:"datasources"`
	}
	decodeStrict(t, dockerPath(t, "grafana", "provisioning", "datasources", "datasources.yaml"), &f)
	if f.APIVersion != 1 {
		t.Errorf("datasources apiVersion %d, want 1", f.APIVersion)
	}
	out := map[string]provisionedDatasource{}
	for _, ds := range f.Datasources {
		out[ds.UID] = ds
	}
	return out
}

// exemplarLabel is the exemplar label Grafana reads trace ids from.
func exemplarLabel(t testing.TB) string {
	t.Helper()
	for _, ds := range provisionedDatasources(t) {
		for _, d := range ds.JSONData.ExemplarTraceIDDestinations {
			return d.Name
		}
	}
	t.Fatal("no exemplarTraceIdDestinations in the Grafana data sources")
	return ""
}

func TestGrafanaDatasources(t *testing.T) {
	sources := provisionedDatasources(t)
	p := loadCompose(t, nil)
	for uid, want := range map[string]struct {
		typ, service string
		port         int
	}{
		"prometheus": {"prometheus", "prometheus", 9090},
		"jaeger":     {"jaeger", "jaeger", 16686},
	} {
		ds, ok := sources[uid]
		if !ok {
			t.Errorf("no data source with uid %s", uid)
			continue
		}
		if ds.Type != want.typ || ds.Access != "proxy" {
			t.Errorf("%s: type %s access %s, want %s via proxy", uid, ds.Type, ds.Access, want.typ)
		}
		if ds.URL != fmt.Sprintf("http://%s:%d", want.service, want.port) {
			t.Errorf("%s: url %s, want http://%s:%d", uid, ds.URL, want.service, want.port)
		}
		if _, ok := p.Services[want.service]; !ok {
			t.Errorf("%s: no compose service %s", uid, want.service)
		}
	}
	// Exemplars link to Jaeger under the label Lumen's exemplars carry
	// (TestLumenExportsTheDashboardMetrics checks the binary's side).
	dests := sources["prometheus"].JSONData.ExemplarTraceIDDestinations
	if len(dests) != 1 || dests[0].Name != "trace_id" || dests[0].DatasourceUID != "jaeger" {
		t.Errorf("exemplar destinations %+v, want trace_id -> jaeger", dests)
	}
}
