package traceanalyze

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// WriteJSON writes the report as one indented JSON object.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// fmtMs prints a duration in milliseconds with microsecond precision.
func fmtMs(d Dur) string { return fmt.Sprintf("%.3fms", float64(d)/1e6) }

func pct(f float64) string { return fmt.Sprintf("%.1f%%", 100*f) }

// fmtCost prints a cost to a billionth of the currency unit, without
// trailing zeros or exponents (token costs are often fractions of a cent).
func fmtCost(c float64) string {
	return strconv.FormatFloat(math.Round(c*1e9)/1e9, 'f', -1, 64)
}

// WriteText writes the report for people.
func (r *Report) WriteText(w io.Writer) error {
	ew := &errWriter{w: w}
	ew.printf("%d spans in %d traces: %d requests, %d batch steps, from %s to %s (%s)\n",
		r.Spans, r.Traces, r.Requests, r.Batches,
		r.Start.Format(time.RFC3339Nano), r.End.Format(time.RFC3339Nano), r.End.Sub(r.Start).Round(time.Microsecond))
	if r.Probes > 0 {
		ew.printf("%d health-check and reflection traces left out of the critical paths and bottlenecks\n", r.Probes)
	}

	ew.printf("\nOperations (durations: p50/p99 by nearest rank)\n")
	t := table{{"operation", "count", "mean", "p50", "p99", "max"}}
	for _, o := range r.Operations {
		t = append(t, []string{o.Name, fmt.Sprint(o.Count), fmtMs(o.Mean), fmtMs(o.P50), fmtMs(o.P99), fmtMs(o.Max)})
	}
	t.write(ew)

	if p := r.Selected; p != nil {
		ew.printf("\nCritical path of trace %s (%s, %s): %s\n", p.TraceID, p.Root, fmtMs(p.Duration), strings.Join(p.Chain, " → "))
		t := table{{"span", "offset", "duration"}}
		for _, s := range p.Segments {
			t = append(t, []string{s.Name, "+" + fmtMs(s.Offset), fmtMs(s.Duration)})
		}
		t.write(ew)
		if qe := r.SelectedQueueing; qe != nil {
			r.writeQueueing(ew, qe)
		}
		if n := len(r.CriticalPaths); n > 1 {
			ew.printf("(%d request traces; --json lists every critical path, --trace-id picks one)\n", n)
		}
	}

	if len(r.Bottlenecks) > 0 {
		ew.printf("\nBottlenecks: time on the critical paths of %d request traces\n", len(r.CriticalPaths))
		t := table{{"operation", "on paths", "share", "traces"}}
		for _, b := range r.Bottlenecks {
			t = append(t, []string{b.Name, fmtMs(b.Time), pct(b.Share), fmt.Sprint(b.Traces)})
		}
		t.write(ew)
	}

	if ph := r.Phases; ph.Requests > 0 {
		ew.printf("\nPhases over %d requests\n", ph.Requests)
		t := table{{"phase", "total", "share", "mean/request", "requests"}}
		for _, row := range []struct {
			name string
			s    PhaseStat
		}{{"prepare", ph.Prepare}, {"queue", ph.Queue}, {"prefill", ph.Prefill}, {"decode", ph.Decode}} {
			if row.name == "prepare" && row.s.Count == 0 {
				continue // traces from before the prepare span
			}
			t = append(t, []string{row.name, fmtMs(row.s.Total), pct(row.s.Share), fmtMs(row.s.Mean), fmt.Sprint(row.s.Count)})
		}
		t.write(ew)

		c := r.Contention
		ew.printf("\nBatch contention\n")
		if c.AttrRequests > 0 {
			ew.printf("  decode spans (lumen.decode.*), %d requests: mean batch size %.2f (max %.2f), decode steps per request %.2f (max %d)\n",
				c.AttrRequests, c.MeanBatchAttr, c.MaxMeanBatchAttr, c.MeanDecodeSteps, c.MaxDecodeSteps)
		} else {
			ew.printf("  decode spans: no lumen.decode.mean_batch_size attributes\n")
		}
		if c.LinkedRequests > 0 {
			ew.printf("  linked batch spans, %d requests: mean batch size %.2f (max %d), steps per request %.2f (max %d)\n",
				c.LinkedRequests, c.MeanBatchLinked, c.MaxBatchLinked, c.MeanSteps, c.MaxSteps)
		} else {
			ew.printf("  linked batch spans: none in the input (batch spans are separate traces; include them to see per-step sizes)\n")
		}

		r.writeFailures(ew)
		r.writeUsage(ew, "model", r.Models)
		r.writeUsage(ew, "tenant", r.Tenants)
	}
	return ew.err
}

// maxHoldersListed bounds the holders the text report names.
const maxHoldersListed = 10

// writeQueueing says whom the selected request waited for.
func (r *Report) writeQueueing(w io.Writer, qe *Queueing) {
	if len(qe.Holders) == 0 {
		fmt.Fprintf(w, "It queued %s while no other request in the input held a slot (are all of the traces of that time included?)\n", fmtMs(qe.Wait))
		return
	}
	fmt.Fprintf(w, "It queued %s while %d other requests held the slots:\n", fmtMs(qe.Wait), len(qe.Holders))
	t := table{{"trace", "request", "prefill during the wait", "decode during the wait"}}
	for _, h := range qe.Holders[:min(len(qe.Holders), maxHoldersListed)] {
		t = append(t, []string{h.TraceID, h.Request, fmtMs(h.Prefill), fmtMs(h.Decode)})
	}
	t.write(w)
	if n := len(qe.Holders) - maxHoldersListed; n > 0 {
		fmt.Fprintf(w, "(%d more; --json has them all under selected_queueing)\n", n)
	}
}

// maxFailuresListed bounds the text report's list of failed requests
// (--json has them all).
const maxFailuresListed = 20

// writeFailures lists the requests that failed, were refused or were
// cancelled, first by kind, then each (the first maxFailuresListed).
func (r *Report) writeFailures(w io.Writer) {
	var failed []Request
	kinds := map[string]int{}
	for _, q := range r.RequestList {
		if q.Failed() {
			failed = append(failed, q)
			kinds[cmp.Or(q.ErrorType, "error")]++
		}
	}
	if len(failed) == 0 {
		fmt.Fprintf(w, "\nFailed, refused or cancelled requests: none\n")
		return
	}
	var byKind []string
	for _, k := range slices.Sorted(maps.Keys(kinds)) {
		byKind = append(byKind, fmt.Sprintf("%s %d", k, kinds[k]))
	}
	fmt.Fprintf(w, "\nFailed, refused or cancelled requests: %d of %d (%s)\n", len(failed), r.Requests, strings.Join(byKind, ", "))
	t := table{{"trace", "request", "error.type", "cancel reason", "duration"}}
	for _, q := range failed[:min(len(failed), maxFailuresListed)] {
		t = append(t, []string{q.TraceID, q.Name, cmp.Or(q.ErrorType, "error"), cmp.Or(q.CancelReason, "-"), fmtMs(q.Duration)})
	}
	t.write(w)
	if n := len(failed) - maxFailuresListed; n > 0 {
		fmt.Fprintf(w, "(%d more; --json lists every request with its error_type)\n", n)
	}
}

func (r *Report) writeUsage(w io.Writer, by string, rows []Usage) {
	fmt.Fprintf(w, "\nTokens by %s\n", by)
	t := table{{by, "requests", "input", "output"}}
	if r.Currency != "" {
		t[0] = append(t[0], "cost ("+r.Currency+")")
	}
	for _, u := range rows {
		row := []string{u.Name, fmt.Sprint(u.Requests), fmt.Sprint(u.InputTokens), fmt.Sprint(u.OutputTokens)}
		if u.Cost != nil {
			row = append(row, fmtCost(*u.Cost))
		}
		t = append(t, row)
	}
	t.write(w)
}

// errWriter keeps the first write error so the report code stays linear.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

func (e *errWriter) printf(format string, args ...any) { fmt.Fprintf(e, format, args...) }

// table is rows of cells, the first row a header; write pads the first
// column on the right (names) and the others on the left (numbers).
type table [][]string

func (t table) write(w io.Writer) {
	var widths []int
	for _, row := range t {
		for i, cell := range row {
			if i >= len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], utf8.RuneCountInString(cell))
		}
	}
	for _, row := range t {
		var b strings.Builder
		b.WriteString("  ")
		for i, cell := range row {
			pad := strings.Repeat(" ", widths[i]-utf8.RuneCountInString(cell))
			if i == 0 {
				b.WriteString(cell + pad)
			} else {
				b.WriteString("  " + pad + cell)
			}
		}
		fmt.Fprintln(w, strings.TrimRight(b.String(), " "))
	}
}
