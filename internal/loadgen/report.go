package loadgen

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Report summarises a run. Its JSON form is the machine-readable output
// of `lumen bench serve --json`.
type Report struct {
	// Target is what was measured, such as "grpc 127.0.0.1:9090".
	Target string `json:"target"`
	// Concurrency or Rate (requests/s) is the mode; the other is 0.
	Concurrency int     `json:"concurrency"`
	Rate        float64 `json:"rate"`
	Seed        uint64  `json:"seed"`
	// PromptCharsPerToken sized the prompts: measured on the target's
	// tokenizer, or assumed when it could not count tokens.
	PromptCharsPerToken         float64 `json:"prompt_chars_per_token"`
	PromptCharsPerTokenMeasured bool    `json:"prompt_chars_per_token_measured"`

	// Requests were sent; each ended one of four ways: OK (a final
	// message), Cancelled (on purpose, mid-stream), Errors (a failure)
	// or Interrupted (the run itself was stopped).
	Requests    int `json:"requests"`
	OK          int `json:"ok"`
	Cancelled   int `json:"cancelled"`
	Errors      int `json:"errors"`
	Interrupted int `json:"interrupted"`
	// CancelMissed requests were picked for cancellation but ended
	// before their chunk came; they count as OK.
	CancelMissed int `json:"cancel_missed"`
	// ErrorsByKind counts failures by gRPC code ("ResourceExhausted"),
	// HTTP status ("HTTP 429"), error inside a stream ("stream:
	// internal_error") or "transport"; ErrorExamples holds the first
	// message of each kind.
	ErrorsByKind  map[string]int    `json:"errors_by_kind"`
	ErrorExamples map[string]string `json:"error_examples,omitempty"`

	// WallS is the measurement window in seconds: from the first request
	// sent to the end of the last.
	WallS float64 `json:"wall_s"`
	// RequestsPerS is OK requests per second of the window.
	RequestsPerS float64 `json:"requests_per_s"`
	// Token counts of the OK requests, as the server reported them
	// (CachedTokens are part of PromptTokens), and per second of the
	// window.
	PromptTokens     int     `json:"prompt_tokens"`
	CachedTokens     int     `json:"cached_tokens"`
	CompletionTokens int     `json:"completion_tokens"`
	InputTokensPerS  float64 `json:"input_tokens_per_s"`
	OutputTokensPerS float64 `json:"output_tokens_per_s"`

	// TTFTMS is the time from sending a request to its first non-empty
	// text chunk, over OK and cancelled requests that got one.
	TTFTMS Summary `json:"ttft_ms"`
	// TPOTMS is the time per output token after the first, (last chunk −
	// first chunk) / (completion tokens − 1), over OK requests with at
	// least two tokens.
	TPOTMS Summary `json:"tpot_ms"`
	// E2EMS is the time from sending an OK request to its final message.
	E2EMS Summary `json:"e2e_ms"`
	// ServerQueueMS and ServerPrefillMS are means of the timings the
	// server reported in the final messages of OK requests.
	ServerQueueMS   float64 `json:"server_queue_ms_mean"`
	ServerPrefillMS float64 `json:"server_prefill_ms_mean"`
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func newReport(cfg Config, target string, outcomes []outcome, wall time.Duration) Report {
	r := Report{
		Target:       target,
		Concurrency:  cfg.Concurrency,
		Rate:         cfg.Rate,
		Seed:         cfg.Seed,
		Requests:     len(outcomes),
		ErrorsByKind: map[string]int{},
		WallS:        wall.Seconds(),
	}
	var ttft, tpot, e2e []float64
	var queue, prefill float64
	for _, o := range outcomes {
		if o.chunks > 0 && (o.how == endOK || o.how == endCancelled) {
			ttft = append(ttft, ms(o.first.Sub(o.sent)))
		}
		switch o.how {
		case endOK:
			r.OK++
			if o.plannedCancel {
				r.CancelMissed++
			}
			r.PromptTokens += o.res.PromptTokens
			r.CachedTokens += o.res.CachedTokens
			r.CompletionTokens += o.res.CompletionTokens
			queue += o.res.QueueMS
			prefill += o.res.PrefillMS
			e2e = append(e2e, ms(o.end.Sub(o.sent)))
			if o.chunks > 0 && o.res.CompletionTokens >= 2 {
				tpot = append(tpot, ms(o.last.Sub(o.first))/float64(o.res.CompletionTokens-1))
			}
		case endCancelled:
			r.Cancelled++
		case endFailed:
			r.Errors++
			r.ErrorsByKind[o.kind]++
			if r.ErrorExamples == nil {
				r.ErrorExamples = map[string]string{}
			}
			if _, ok := r.ErrorExamples[o.kind]; !ok {
				r.ErrorExamples[o.kind] = message(o.err)
			}
		case endInterrupted:
			r.Interrupted++
		}
	}
	if s := wall.Seconds(); s > 0 {
		r.RequestsPerS = float64(r.OK) / s
		r.InputTokensPerS = float64(r.PromptTokens) / s
		r.OutputTokensPerS = float64(r.CompletionTokens) / s
	}
	if r.OK > 0 {
		r.ServerQueueMS = queue / float64(r.OK)
		r.ServerPrefillMS = prefill / float64(r.OK)
	}
	r.TTFTMS, r.TPOTMS, r.E2EMS = Summarize(ttft), Summarize(tpot), Summarize(e2e)
	return r
}

// Print writes r as a human-readable table.
func (r Report) Print(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	mode := fmt.Sprintf("concurrency %d", r.Concurrency)
	if r.Rate > 0 {
		mode = fmt.Sprintf("rate %g/s (Poisson)", r.Rate)
	}
	fmt.Fprintf(tw, "target\t%s, %s, seed %d\n", r.Target, mode, r.Seed)
	fmt.Fprintf(tw, "requests\t%d sent: %d ok, %d cancelled, %d errors", r.Requests, r.OK, r.Cancelled, r.Errors)
	if r.Interrupted > 0 {
		fmt.Fprintf(tw, ", %d interrupted", r.Interrupted)
	}
	if r.CancelMissed > 0 {
		fmt.Fprintf(tw, " (%d picked for cancellation finished first)", r.CancelMissed)
	}
	fmt.Fprintln(tw)
	for _, kind := range sortedKinds(r.ErrorsByKind) {
		fmt.Fprintf(tw, "  %s\t%d, e.g. %s\n", kind, r.ErrorsByKind[kind], oneLine(r.ErrorExamples[kind]))
	}
	fmt.Fprintf(tw, "wall time\t%.3f s\n", r.WallS)
	fmt.Fprintf(tw, "throughput\t%.2f req/s, %.1f output tok/s, %.1f input tok/s\n", r.RequestsPerS, r.OutputTokensPerS, r.InputTokensPerS)
	how := "measured"
	if !r.PromptCharsPerTokenMeasured {
		how = "assumed"
	}
	fmt.Fprintf(tw, "tokens\t%d prompt (%d cached), %d completion; prompts at %.2f chars/token (%s)\n",
		r.PromptTokens, r.CachedTokens, r.CompletionTokens, r.PromptCharsPerToken, how)
	fmt.Fprintf(tw, "server means\tqueue %.1f ms, prefill %.1f ms\n", r.ServerQueueMS, r.ServerPrefillMS)
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "latency (ms)\tn\tmean\tp50\tp90\tp99\tmax")
	for _, row := range []struct {
		name string
		s    Summary
	}{{"ttft", r.TTFTMS}, {"tpot", r.TPOTMS}, {"e2e", r.E2EMS}} {
		s := row.s
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\n", row.name, s.N, s.Mean, s.P50, s.P90, s.P99, s.Max)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("loadgen: writing report: %w", err)
	}
	return nil
}

// message is err's message without the kind a RequestError adds.
func message(err error) string {
	var re *RequestError
	if errors.As(err, &re) {
		return re.Err.Error()
	}
	return err.Error()
}

// sortedKinds lists error kinds, most frequent first.
func sortedKinds(m map[string]int) []string {
	kinds := slices.Collect(maps.Keys(m))
	slices.SortFunc(kinds, func(a, b string) int {
		return cmp.Or(cmp.Compare(m[b], m[a]), strings.Compare(a, b))
	})
	return kinds
}

// oneLine keeps a message on one short line of the table.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > 120 {
		s = string(r[:117]) + "..."
	}
	return s
}
