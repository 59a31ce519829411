package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"text/tabwriter"

	"github.com/lumenllm/lumen/internal/loadgen"
)

// stepPhaseMetric is the server's per-phase step time counter.
const stepPhaseMetric = "lumen_step_phase_seconds_total"

// stepPhaseOrder is the order phases are printed in.
var stepPhaseOrder = []string{"decode", "build", "sample", "emit", "gap"}

// scrapePhases reads the step phase counters from a server's /metrics.
func scrapePhases(client *http.Client, url string) (map[string]float64, error) {
	families, err := loadgen.ScrapeMetrics(context.Background(), client, url)
	if err != nil {
		return nil, fmt.Errorf("step phases: %w", err)
	}
	out := map[string]float64{}
	f, ok := families[stepPhaseMetric]
	if !ok {
		return nil, fmt.Errorf("step phases: %s has no %s (not a Lumen server, or an older one)", url, stepPhaseMetric)
	}
	for _, m := range f.GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "phase" {
				out[l.GetValue()] = m.GetCounter().GetValue()
			}
		}
	}
	return out, nil
}

// writePhases prints where the server's step time went between two
// scrapes, and that time's share of the run's wall time.
func writePhases(w io.Writer, before, after map[string]float64, wallS float64) error {
	total := 0.0
	for _, p := range stepPhaseOrder {
		total += after[p] - before[p]
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "\nserver step phase\tseconds\tshare of step time\tshare of wall time\n")
	for _, p := range stepPhaseOrder {
		d := after[p] - before[p]
		share := 0.0
		if total > 0 {
			share = d / total
		}
		fmt.Fprintf(tw, "%s\t%.3f\t%.1f%%\t%.1f%%\n", p, d, 100*share, 100*d/wallS)
	}
	fmt.Fprintf(tw, "all steps\t%.3f\t100%%\t%.1f%%\n", total, 100*total/wallS)
	return tw.Flush()
}
