//go:build scale && scalebench

package scale

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lumenllm/lumen/test/internal/bintest"
)

// The benchmark's client load, the same for every pool: a closed loop of
// streamed completions through HAProxy (lumen bench serve).
const (
	benchConcurrency = 16
	benchRequests    = 160 // per round
	benchPrompt      = 32  // tokens
	benchMaxTokens   = 64  // mean; ×(1 ± benchSpread)
	benchSpread      = "0.5"
	benchRounds      = 3
	scrapeEvery      = 50 * time.Millisecond
)

// benchPool is one way of serving the load: a frontend of HAProxy and
// the replicas behind it.
type benchPool struct {
	label, pool string
	replicas    []*replica
	slots       int // --parallel of each replica
}

// benchRound is one `lumen bench serve` run on a pool, and what its
// replicas' gauges were meanwhile.
type benchRound struct {
	report struct {
		OK               int     `json:"ok"`
		Errors           int     `json:"errors"`
		OutputTokensPerS float64 `json:"output_tokens_per_s"`
		TTFTMS           struct {
			P50 float64 `json:"p50"`
			P99 float64 `json:"p99"`
		} `json:"ttft_ms"`
		ErrorsByKind map[string]int `json:"errors_by_kind"`
	}
	queue  map[string][]float64 // per replica, lumen_queue_depth_requests samples
	kv     map[string][]float64 // per replica, lumen_kv_cache_usage_ratio samples
	spread []float64            // per sample: most minus fewest queued across the pool
	// stranded counts the samples where a request waited in one
	// replica's queue while another replica had a free slot, of samples.
	stranded, samples int
}

// TestScaleBench measures throughput and TTFT through HAProxy with one
// replica and with three under the same load, rounds interleaved, and
// scrapes each replica's queue depth during the load. It prints a
// Markdown table (docs/benchmarks.md, "Replicas behind HAProxy"). It is
// built only with the scalebench tag (make scale-bench), so that make
// scale-test does not compile a test it would not run.
func TestScaleBench(t *testing.T) {
	d := readDeps(t)
	small := replicaConfig{parallel: 4, threads: 1, drainTimeout: 5 * time.Second}
	rs := startReplicas(t, d, small, "r1", "r2", "r3")
	// One replica with the three's slots and both cores.
	big := startReplicas(t, d, replicaConfig{parallel: 4 * 4, threads: 2, drainTimeout: 5 * time.Second}, "big")
	pools := []benchPool{
		{"1 replica, --parallel 4 --threads 1", "one", rs[:1], small.parallel},
		{"3 replicas, each --parallel 4 --threads 1", "three", rs, small.parallel},
		{"1 replica, --parallel 16 --threads 2", "big", big, 4 * 4},
	}
	lb := startHAProxy(t, d, poolOf("one", rs[0]), poolOf("three", rs...), poolOf("big", big[0]))

	results := make([][]benchRound, len(pools))
	for round := range benchRounds {
		for i, p := range pools {
			r := runBenchRound(t, d, lb, p, round+1)
			t.Logf("round %d, %s: %.0f tok/s, TTFT p99 %.0f ms", round+1, p.label, r.report.OutputTokensPerS, r.report.TTFTMS.P99)
			results[i] = append(results[i], r)
		}
	}
	stopAll(t, slices.Concat(rs, big))

	var b strings.Builder
	fmt.Fprintf(&b, "\n| pool | output tok/s (median, range) | TTFT p50 ms | TTFT p99 ms | queued per replica: mean / max | KV used per replica: mean | most − fewest queued: mean / max | queued here, free slot there |\n")
	fmt.Fprintf(&b, "|---|---:|---:|---:|---|---|---:|---:|\n")
	for i, p := range pools {
		var tps, p50, p99 []float64
		queue, kv := map[string][]float64{}, map[string][]float64{}
		var spread []float64
		stranded, samples := 0, 0
		for _, r := range results[i] {
			stranded, samples = stranded+r.stranded, samples+r.samples
			tps = append(tps, r.report.OutputTokensPerS)
			p50 = append(p50, r.report.TTFTMS.P50)
			p99 = append(p99, r.report.TTFTMS.P99)
			for name, v := range r.queue {
				queue[name] = append(queue[name], v...)
			}
			for name, v := range r.kv {
				kv[name] = append(kv[name], v...)
			}
			spread = append(spread, r.spread...)
		}
		var qs, ks []string
		for _, r := range p.replicas {
			qs = append(qs, fmt.Sprintf("%.1f / %.0f", mean(queue[r.name]), slices.Max(queue[r.name])))
			ks = append(ks, fmt.Sprintf("%.0f%%", 100*mean(kv[r.name])))
		}
		spreadCell, strandedCell := "–", "–"
		if len(p.replicas) > 1 {
			spreadCell = fmt.Sprintf("%.1f / %.0f", mean(spread), slices.Max(spread))
			strandedCell = fmt.Sprintf("%.0f%% of %d samples", 100*float64(stranded)/float64(samples), samples)
		}
		fmt.Fprintf(&b, "| %s | %.0f (%.0f–%.0f) | %.0f | %.0f | %s | %s | %s | %s |\n", p.label,
			median(tps), slices.Min(tps), slices.Max(tps), median(p50), median(p99),
			strings.Join(qs, ", "), strings.Join(ks, ", "), spreadCell, strandedCell)
	}
	t.Logf("%d rounds, interleaved; each: %d streamed completions at concurrency %d, %d-token prompts, max_tokens %d ×(1 ± %s), ignore_eos; medians over rounds:%s",
		benchRounds, benchRequests, benchConcurrency, benchPrompt, benchMaxTokens, benchSpread, b.String())
}

// runBenchRound runs `lumen bench serve` through the pool's frontend
// while sampling each of its replicas' queue depth and KV usage.
func runBenchRound(t *testing.T, d deps, lb *haproxy, p benchPool, seed int) benchRound {
	t.Helper()
	u, err := url.Parse(lb.url(p.pool))
	if err != nil {
		t.Fatal(err)
	}
	r := benchRound{queue: map[string][]float64{}, kv: map[string][]float64{}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(scrapeEvery)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			var queued, free []bool
			lo, hi := -1.0, -1.0
			for _, rep := range p.replicas {
				g, err := rep.gauges("lumen_queue_depth_requests", "lumen_kv_cache_usage_ratio", "lumen_active_sequences")
				if err != nil {
					t.Errorf("scraping %s: %v", rep.name, err)
					return
				}
				q := g["lumen_queue_depth_requests"]
				r.queue[rep.name] = append(r.queue[rep.name], q)
				r.kv[rep.name] = append(r.kv[rep.name], g["lumen_kv_cache_usage_ratio"])
				if lo < 0 || q < lo {
					lo = q
				}
				hi = max(hi, q)
				queued = append(queued, q > 0)
				free = append(free, g["lumen_active_sequences"] < float64(p.slots))
			}
			r.spread = append(r.spread, hi-lo)
			r.samples++
			if isStranded(queued, free) {
				r.stranded++
			}
		}
	})
	cmd := exec.Command(d.lumen, "bench", "serve", "--protocol", "openai", "--addr", u.Host,
		"--concurrency", strconv.Itoa(benchConcurrency), "--requests", strconv.Itoa(benchRequests),
		"--prompt-tokens", strconv.Itoa(benchPrompt), "--max-tokens", strconv.Itoa(benchMaxTokens),
		"--max-tokens-spread", benchSpread, "--ignore-eos", "--temperature", "1",
		"--seed", strconv.Itoa(seed), "--json")
	cmd.Env = bintest.HermeticEnv(t.TempDir())
	out, err := cmd.Output()
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("lumen bench serve on %s: %v\n%s", p.pool, err, out)
	}
	if err := json.Unmarshal(out, &r.report); err != nil {
		t.Fatalf("lumen bench serve --json: %v\n%s", err, out)
	}
	if r.report.Errors > 0 || r.report.OK != benchRequests {
		t.Errorf("%s: %d of %d requests ok, errors %v", p.label, r.report.OK, benchRequests, r.report.ErrorsByKind)
	}
	for _, rep := range p.replicas {
		if len(r.queue[rep.name]) == 0 {
			t.Fatalf("%s: no queue depth scraped from %s", p.label, rep.name)
		}
	}
	return r
}

// isStranded: some replica has a request queued while another has a
// free slot (a picker that saw both would have started it there).
func isStranded(queued, free []bool) bool {
	for i := range queued {
		for j := range free {
			if i != j && queued[i] && free[j] {
				return true
			}
		}
	}
	return false
}

func mean(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s / float64(len(v))
}

func median(v []float64) float64 {
	s := slices.Sorted(slices.Values(v))
	return s[len(s)/2]
}
