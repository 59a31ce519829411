package traceanalyze

import (
	_ "embed"
	"fmt"
	"html/template"
	"io"
	"math"
	"slices"
	"time"

	"github.com/lumenllm/lumen/internal/telemetry/semconv"
)

//go:embed report.html.tmpl
var reportTemplate string

// The report is one file: CSS in a <style> element, charts as inline SVG
// laid out here, no scripts, fonts or anything else fetched. Every piece
// of span text goes through html/template, which escapes it.
var htmlReport = template.Must(template.New("report").Funcs(template.FuncMap{
	"ms":      fmtMs,
	"pct":     pct,
	"chartOf": func(c chartView, class, label string) chartArgs { return chartArgs{c, class, label} },
	"usageOf": func(rows []Usage, by, currency string) usageArgs { return usageArgs{rows, by, currency} },
	"cost": func(c *float64) string {
		if c == nil {
			return ""
		}
		return fmtCost(*c)
	},
}).Parse(reportTemplate))

// Layout of the charts, in SVG user units.
const (
	wfLabelWidth = 300
	wfBarsWidth  = 760
	wfRowHeight  = 18
	wfTop        = 24
	chartWidth   = 520
	chartHeight  = 200
	chartPad     = 36
	histBins     = 20
	timeBuckets  = 40
)

type chartArgs struct {
	C     chartView
	Class string
	Label string
}

type usageArgs struct {
	Rows     []Usage
	By       string
	Currency string
}

type htmlData struct {
	R         *Report
	Waterfall *waterfallView
	Hist      chartView
	Tokens    chartView
	Rate      chartView
}

type waterfallView struct {
	TraceID       string
	Duration      Dur
	Width, Height int
	LabelWidth    int
	Rows          []wfRow
	Ticks         []tick
	LinkedBatches int
}

type wfRow struct {
	Y, TextY    int
	TextX       int
	Label       string
	Title       string
	X, W        string
	Class       string
	SpanID      string
	BatchLinks  []wfMark
	BatchLinkY  int
	HasBatchRow bool
}

type wfMark struct {
	X, W  string
	Title string
}

type tick struct {
	X      string
	Label  string
	Anchor string // text-anchor: start, middle or end, so edge labels stay inside
}

type chartView struct {
	Width, Height int
	Empty         string // why there is nothing to draw
	Bars          []chartBar
	Lines         []chartLine
	XLabels       []tick
	YMax          string
	Legend        []string
	Base          int // y of the x axis
	Left          int // x of the y axis
	Right         int
}

type chartBar struct {
	X, Y, W, H string
	Title      string
}

type chartLine struct {
	Class  string
	Points string
}

func f2(v float64) string { return fmt.Sprintf("%.2f", v) }

// WriteHTML writes a self-contained HTML report: summary tables, the
// waterfall of the selected trace (one bar per span, batch steps linked
// to a request marked under its bar), a latency histogram of requests,
// and tokens and requests per second over time.
func (r *Report) WriteHTML(w io.Writer) error {
	d := htmlData{R: r, Hist: r.latencyHistogram(), Tokens: r.tokensOverTime(), Rate: r.requestRate()}
	if r.selected != nil {
		d.Waterfall = r.waterfall(r.selected)
	}
	return htmlReport.Execute(w, d)
}

// waterfallOrder is t's spans depth-first (children by start), with their
// depths; spans unreachable from a root (malformed parent cycles) come
// last, so every span gets exactly one row.
func waterfallOrder(t *Trace) ([]*Span, []int) {
	ids := map[string]bool{}
	for _, s := range t.Spans {
		ids[s.SpanID] = true
	}
	children := map[string][]*Span{}
	var roots []*Span
	for _, s := range t.Spans { // already in start order
		if s.ParentID == "" || !ids[s.ParentID] {
			roots = append(roots, s)
		} else {
			children[s.ParentID] = append(children[s.ParentID], s)
		}
	}
	var order []*Span
	var depth []int
	seen := map[*Span]bool{}
	var visit func(s *Span, d int)
	visit = func(s *Span, d int) {
		if seen[s] {
			return
		}
		seen[s] = true
		order, depth = append(order, s), append(depth, d)
		for _, c := range children[s.SpanID] {
			visit(c, d+1)
		}
	}
	for _, s := range roots {
		visit(s, 0)
	}
	for _, s := range t.Spans {
		visit(s, 0)
	}
	return order, depth
}

func spanClass(s *Span) string {
	switch {
	case s.Name == semconv.SpanPrepare || s.Name == semconv.SpanQueue || s.Name == semconv.SpanPrefill || s.Name == semconv.SpanDecode:
		return s.Name
	case isBatch(s):
		return "batch"
	case isRequest(s):
		return "request"
	case s.Kind == "server" || s.Kind == "client":
		return "transport"
	}
	return "other"
}

func (r *Report) waterfall(t *Trace) *waterfallView {
	start, end := t.Start(), t.End()
	total := end.Sub(start)
	scale := func(at time.Time) float64 {
		if total <= 0 {
			return 0
		}
		off := min(max(at.Sub(start), 0), total)
		return float64(off) / float64(total) * wfBarsWidth
	}
	v := &waterfallView{TraceID: t.ID, Duration: Dur(total), LabelWidth: wfLabelWidth, Width: wfLabelWidth + wfBarsWidth + 10}
	order, depth := waterfallOrder(t)
	y := wfTop
	for i, s := range order {
		x0, x1 := scale(s.Start), scale(s.End)
		row := wfRow{
			Y: y, TextY: y + wfRowHeight - 5, TextX: 4 + 12*min(depth[i], 16),
			Label: shorten(s.Name, 40), Title: fmt.Sprintf("%s — %s (span %s)", s.Name, fmtMs(Dur(s.Duration())), s.SpanID),
			X: f2(wfLabelWidth + x0), W: f2(max(x1-x0, 1)), Class: spanClass(s), SpanID: s.SpanID,
		}
		if s.Error {
			row.Class += " error"
		}
		y += wfRowHeight
		if batches := r.batchesOf[[2]string{s.TraceID, s.SpanID}]; len(batches) > 0 {
			row.HasBatchRow, row.BatchLinkY = true, y
			for _, b := range batches {
				bx0, bx1 := scale(b.Start), scale(b.End)
				n, _ := b.Int(string(semconv.AttrBatchSize))
				row.BatchLinks = append(row.BatchLinks, wfMark{
					X: f2(wfLabelWidth + bx0), W: f2(max(bx1-bx0, 1)),
					Title: fmt.Sprintf("batch step %s: %d sequences, %s", b.SpanID, n, fmtMs(Dur(b.Duration()))),
				})
			}
			v.LinkedBatches += len(batches)
			y += wfRowHeight / 2
		}
		v.Rows = append(v.Rows, row)
	}
	for i := 0; i <= 4; i++ {
		anchor := "middle"
		switch i {
		case 0:
			anchor = "start"
		case 4:
			anchor = "end"
		}
		v.Ticks = append(v.Ticks, tick{X: f2(wfLabelWidth + float64(i)*wfBarsWidth/4), Label: fmtMs(Dur(total * time.Duration(i) / 4)), Anchor: anchor})
	}
	v.Height = y + 8
	return v
}

func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func newChart() chartView {
	return chartView{Width: chartWidth, Height: chartHeight, Base: chartHeight - chartPad + 8, Left: chartPad + 16, Right: chartWidth - 8}
}

// latencyHistogram bins request durations into equal-width bins from 0 to
// the maximum.
func (r *Report) latencyHistogram() chartView {
	c := newChart()
	if len(r.RequestList) == 0 {
		c.Empty = "no request spans"
		return c
	}
	var maxD Dur
	for _, q := range r.RequestList {
		maxD = max(maxD, q.Duration)
	}
	width := max(maxD/histBins+1, 1) // every duration falls in a bin
	counts := make([]int, histBins)
	for _, q := range r.RequestList {
		counts[min(int(q.Duration/width), histBins-1)]++
	}
	top := slices.Max(counts)
	plotW, plotH := float64(c.Right-c.Left), float64(c.Base-12)
	for i, n := range counts {
		h := float64(n) / float64(top) * plotH
		c.Bars = append(c.Bars, chartBar{
			X: f2(float64(c.Left) + float64(i)*plotW/histBins + 1), W: f2(plotW/histBins - 2),
			Y: f2(float64(c.Base) - h), H: f2(h),
			Title: fmt.Sprintf("%s – %s: %d requests", fmtMs(width*Dur(i)), fmtMs(width*Dur(i+1)), n),
		})
	}
	c.YMax = fmt.Sprintf("%d requests", top)
	c.XLabels = []tick{{X: f2(float64(c.Left)), Label: "0", Anchor: "start"}, {X: f2(float64(c.Right)), Label: fmtMs(width * histBins), Anchor: "end"}}
	return c
}

// buckets splits the report's window into timeBuckets equal buckets.
func (r *Report) buckets() (time.Duration, int) {
	window := r.End.Sub(r.Start)
	if window <= 0 {
		return time.Second, 1
	}
	w := window/timeBuckets + 1
	return w, int(window/w) + 1
}

func (r *Report) bucketOf(at time.Time, w time.Duration, n int) int {
	return min(max(int(at.Sub(r.Start)/w), 0), n-1)
}

// polyline draws per-bucket rates scaled so top reaches the plot's top.
func (c *chartView) polyline(class string, rates []float64, top float64) {
	plotW, plotH := float64(c.Right-c.Left), float64(c.Base-12)
	pts := ""
	for i, v := range rates {
		x := float64(c.Left) + (float64(i)+0.5)*plotW/float64(len(rates))
		y := float64(c.Base) - v/top*plotH
		pts += f2(x) + "," + f2(y) + " "
	}
	c.Lines = append(c.Lines, chartLine{Class: class, Points: pts})
}

func (c *chartView) timeAxis(r *Report) {
	c.XLabels = []tick{{X: f2(float64(c.Left)), Label: "0s", Anchor: "start"},
		{X: f2(float64(c.Right)), Label: r.End.Sub(r.Start).Round(time.Microsecond).String(), Anchor: "end"}}
}

// tokensOverTime plots input tokens per second (counted when a request
// starts) and output tokens per second (counted when it ends).
func (r *Report) tokensOverTime() chartView {
	c := newChart()
	if len(r.RequestList) == 0 {
		c.Empty = "no request spans"
		return c
	}
	w, n := r.buckets()
	in, out := make([]float64, n), make([]float64, n)
	for _, q := range r.RequestList {
		in[r.bucketOf(q.Start, w, n)] += float64(q.InputTokens) / w.Seconds()
		out[r.bucketOf(q.Start.Add(q.Duration.Std()), w, n)] += float64(q.OutputTokens) / w.Seconds()
	}
	top := math.Max(slices.Max(in), slices.Max(out))
	if top == 0 {
		c.Empty = "no token counts on the request spans"
		return c
	}
	c.polyline("line-in", in, top)
	c.polyline("line-out", out, top)
	c.YMax = fmt.Sprintf("%.1f tokens/s", top)
	c.Legend = []string{"input tokens/s (at request start)", "output tokens/s (at request end)"}
	c.timeAxis(r)
	return c
}

// requestRate plots requests started per second.
func (r *Report) requestRate() chartView {
	c := newChart()
	if len(r.RequestList) == 0 {
		c.Empty = "no request spans"
		return c
	}
	w, n := r.buckets()
	rate := make([]float64, n)
	for _, q := range r.RequestList {
		rate[r.bucketOf(q.Start, w, n)] += 1 / w.Seconds()
	}
	top := slices.Max(rate)
	plotW, plotH := float64(c.Right-c.Left), float64(c.Base-12)
	for i, v := range rate {
		h := v / top * plotH
		c.Bars = append(c.Bars, chartBar{
			X: f2(float64(c.Left) + float64(i)*plotW/float64(n)), W: f2(max(plotW/float64(n)-1, 0.5)),
			Y: f2(float64(c.Base) - h), H: f2(h),
			Title: fmt.Sprintf("+%s: %.2f requests/s", (w * time.Duration(i)).Round(time.Millisecond), v),
		})
	}
	c.YMax = fmt.Sprintf("%.2f requests/s", top)
	c.timeAxis(r)
	return c
}
