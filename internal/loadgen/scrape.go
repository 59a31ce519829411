package loadgen

import (
	"context"
	"fmt"
	"net/http"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// ScrapeMetrics reads a server's GET /metrics (url) with Prometheus's own
// text parser, by family name: what a benchmark reads off the server it
// loads, beside what it measures from the client side.
func ScrapeMetrics(ctx context.Context, client *http.Client, url string) (map[string]*dto.MetricFamily, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	return families, nil
}

// ScrapeSample reads one unlabelled sample (a counter or gauge) from the
// /metrics of the server whose HTTP listener is httpAddr.
func ScrapeSample(ctx context.Context, httpAddr, name string) (float64, error) {
	families, err := ScrapeMetrics(ctx, http.DefaultClient, "http://"+httpAddr+"/metrics")
	if err != nil {
		return 0, err
	}
	if f, ok := families[name]; ok {
		for _, m := range f.GetMetric() {
			if len(m.GetLabel()) == 0 {
				return m.GetCounter().GetValue() + m.GetGauge().GetValue(), nil
			}
		}
	}
	return 0, fmt.Errorf("GET /metrics: no sample of %s", name)
}
