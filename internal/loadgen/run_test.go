package loadgen

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

// base is a valid closed-loop configuration on a fake clock.
func base(clock Clock) Config {
	return Config{Concurrency: 3, Requests: 60, PromptTokens: 20, MaxTokens: 8, Seed: 1, Clock: clock}
}

// testContext bounds a run whose fake might wait forever on a broken
// runner, so that such a bug fails the test instead of hanging it.
func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*Config)
		want   string // in the error; "" for valid
	}{
		{"valid closed loop", func(*Config) {}, ""},
		{"valid open loop", func(c *Config) { c.Concurrency, c.Rate = 0, 2.5 }, ""},
		{"valid duration only", func(c *Config) { c.Requests, c.Duration = 0, time.Second }, ""},
		{"neither mode", func(c *Config) { c.Concurrency = 0 }, "exactly one of concurrency and rate"},
		{"both modes", func(c *Config) { c.Rate = 1 }, "exactly one of concurrency and rate"},
		{"negative concurrency", func(c *Config) { c.Concurrency = -1 }, "concurrency"},
		{"NaN rate", func(c *Config) { c.Concurrency, c.Rate = 0, math.NaN() }, "rate"},
		{"infinite rate", func(c *Config) { c.Concurrency, c.Rate = 0, math.Inf(1) }, "rate"},
		{"no end", func(c *Config) { c.Requests = 0 }, "number of requests or a duration"},
		{"negative duration", func(c *Config) { c.Duration = -time.Second }, "duration"},
		{"no prompt", func(c *Config) { c.PromptTokens = 0 }, "prompt tokens"},
		{"no max tokens", func(c *Config) { c.MaxTokens = 0 }, "max tokens"},
		{"prompt spread above 1", func(c *Config) { c.PromptSpread = 1.5 }, "prompt spread"},
		{"negative max tokens spread", func(c *Config) { c.MaxTokensSpread = -0.1 }, "max tokens spread"},
		{"cancel fraction above 1", func(c *Config) { c.CancelFraction = 2 }, "cancel fraction"},
		{"temperature above 2", func(c *Config) { c.Temperature = 2.5 }, "temperature"},
		{"negative prompt pool", func(c *Config) { c.PromptPool = -1 }, "prompt pool"},
		{"negative prefix", func(c *Config) { c.PrefixTokens = -3 }, "prefix tokens"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base(nil)
			tt.modify(&cfg)
			err := cfg.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate() = %v, want nil", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, ErrInvalidConfig)):
				t.Fatalf("Validate() = %v, want an ErrInvalidConfig naming %q", err, tt.want)
			}
		})
	}
}

func TestRunCounts(t *testing.T) {
	errBoom := errors.New("boom")
	tests := []struct {
		name          string
		modify        func(*Config)
		before        func(ctx context.Context, f *fakeTarget, k int) error
		wantOK        int
		wantCancelled int // -1: check only that it is near a quarter
		wantErrors    map[string]int
	}{
		{name: "all complete", wantOK: 60, wantErrors: map[string]int{}},
		{name: "all cancelled", modify: func(c *Config) { c.CancelFraction = 1 }, wantCancelled: 60, wantErrors: map[string]int{}},
		{name: "one token, cancelled at its chunk", modify: func(c *Config) { c.CancelFraction, c.MaxTokens = 1, 1 }, wantCancelled: 60, wantErrors: map[string]int{}},
		{name: "a quarter cancelled", modify: func(c *Config) { c.CancelFraction, c.Requests = 0.25, 400 }, wantOK: -1, wantCancelled: -1, wantErrors: map[string]int{}},
		{
			name: "failures by kind",
			before: func(_ context.Context, _ *fakeTarget, k int) error {
				switch {
				case k%5 == 0:
					return &RequestError{Kind: "ResourceExhausted", Err: errors.New("queue full")}
				case k%7 == 3:
					return errBoom
				}
				return nil
			},
			wantOK:     60 - 12 - 7,
			wantErrors: map[string]int{"ResourceExhausted": 12, "other": 7},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base(newFakeClock())
			if tt.modify != nil {
				tt.modify(&cfg)
			}
			f := &fakeTarget{before: tt.before}
			rep, err := Run(testContext(t), cfg, f)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Requests != cfg.Requests || f.started != cfg.Requests {
				t.Errorf("requests = %d, target saw %d, want %d", rep.Requests, f.started, cfg.Requests)
			}
			if tt.wantCancelled == -1 {
				if rep.Cancelled < cfg.Requests/8 || rep.Cancelled > cfg.Requests*3/8 {
					t.Errorf("cancelled = %d of %d, want about a quarter", rep.Cancelled, cfg.Requests)
				}
			} else if rep.Cancelled != tt.wantCancelled {
				t.Errorf("cancelled = %d, want %d", rep.Cancelled, tt.wantCancelled)
			}
			if tt.wantOK == -1 {
				if rep.OK+rep.Cancelled != cfg.Requests {
					t.Errorf("ok %d + cancelled %d != %d", rep.OK, rep.Cancelled, cfg.Requests)
				}
			} else if rep.OK != tt.wantOK {
				t.Errorf("ok = %d, want %d", rep.OK, tt.wantOK)
			}
			if !maps.Equal(rep.ErrorsByKind, tt.wantErrors) || rep.Errors != sum(tt.wantErrors) {
				t.Errorf("errors = %d %v, want %v", rep.Errors, rep.ErrorsByKind, tt.wantErrors)
			}
			if rep.Interrupted != 0 || rep.CancelMissed != 0 {
				t.Errorf("interrupted %d, cancel missed %d, want 0", rep.Interrupted, rep.CancelMissed)
			}
			// Every cancellation ended a stream, with its context cancelled.
			if f.stopped != rep.Cancelled || f.stoppedLive != 0 {
				t.Errorf("target saw %d streams stopped (%d with a live context), report %d cancelled", f.stopped, f.stoppedLive, rep.Cancelled)
			}
			if rep.TTFTMS.N != rep.OK+rep.Cancelled || rep.E2EMS.N != rep.OK {
				t.Errorf("ttft n %d, e2e n %d for %d ok, %d cancelled", rep.TTFTMS.N, rep.E2EMS.N, rep.OK, rep.Cancelled)
			}
			if rep.CompletionTokens != rep.OK*cfg.MaxTokens {
				t.Errorf("completion tokens = %d, want %d", rep.CompletionTokens, rep.OK*cfg.MaxTokens)
			}
		})
	}
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// One request at a time on a clock that moves only with the fake server:
// every timing is known exactly.
func TestRunTimings(t *testing.T) {
	clock := newFakeClock()
	f := &fakeTarget{clock: clock, prefill: 100 * time.Millisecond, perToken: 10 * time.Millisecond}
	cfg := base(clock)
	cfg.Concurrency, cfg.Requests, cfg.MaxTokens = 1, 10, 5
	rep, err := Run(testContext(t), cfg, f)
	if err != nil {
		t.Fatal(err)
	}
	const e2e = 100 + 4*10 // ms
	wall := 10 * e2e / 1000.0
	prompt := 0
	for _, r := range f.reqs {
		prompt += len(r.Prompt) / 2
	}
	checks := []struct {
		name      string
		got, want float64
	}{
		{"wall_s", rep.WallS, wall},
		{"requests_per_s", rep.RequestsPerS, 10 / wall},
		{"output_tokens_per_s", rep.OutputTokensPerS, 50 / wall},
		{"input_tokens_per_s", rep.InputTokensPerS, float64(prompt) / wall},
		{"prompt_tokens", float64(rep.PromptTokens), float64(prompt)},
		{"server_queue_ms_mean", rep.ServerQueueMS, 1},
		{"server_prefill_ms_mean", rep.ServerPrefillMS, 2},
	}
	for _, c := range checks {
		if math.Abs(c.got-c.want) > 1e-9 {
			t.Errorf("%s = %g, want %g", c.name, c.got, c.want)
		}
	}
	for name, s := range map[string]struct {
		got  Summary
		want float64
	}{"ttft": {rep.TTFTMS, 100}, "tpot": {rep.TPOTMS, 10}, "e2e": {rep.E2EMS, e2e}} {
		want := Summary{N: 10, Mean: s.want, P50: s.want, P90: s.want, P99: s.want, Max: s.want}
		if !near(s.got, want) {
			t.Errorf("%s = %+v, want %+v", name, s.got, want)
		}
	}
}

func TestRunConcurrencyNeverExceeded(t *testing.T) {
	for _, n := range []int{1, 3, 8} {
		t.Run("", func(t *testing.T) {
			const total = 40
			// Request k waits until k+n have started: the pipeline stays
			// full, so any runner that allows more than n in flight lets
			// more than n in.
			f := &fakeTarget{before: func(ctx context.Context, f *fakeTarget, k int) error {
				return f.waitStarted(ctx, min(total, k+n))
			}}
			cfg := base(newFakeClock())
			cfg.Concurrency, cfg.Requests = n, total
			rep, err := Run(testContext(t), cfg, f)
			if err != nil {
				t.Fatal(err)
			}
			if f.maxInFlight != n || rep.OK != total {
				t.Errorf("concurrency %d: max in flight %d, ok %d of %d", n, f.maxInFlight, rep.OK, total)
			}
		})
	}
}

func TestRunRate(t *testing.T) {
	t.Run("sends the requested number", func(t *testing.T) {
		f := &fakeTarget{}
		cfg := base(newFakeClock())
		cfg.Concurrency, cfg.Rate, cfg.Requests = 0, 50, 37
		rep, err := Run(testContext(t), cfg, f)
		if err != nil || rep.Requests != 37 || f.started != 37 || rep.OK != 37 {
			t.Fatalf("Run = %v; requests %d, started %d, ok %d, want 37", err, rep.Requests, f.started, rep.OK)
		}
	})
	t.Run("arrivals average the rate", func(t *testing.T) {
		// 2000 exponential gaps of mean 10ms add up to 20s, σ 0.45s.
		cfg := base(newFakeClock())
		cfg.Concurrency, cfg.Rate, cfg.Requests = 0, 100, 2001
		rep, err := Run(testContext(t), cfg, &fakeTarget{})
		if err != nil || rep.WallS < 17.8 || rep.WallS > 22.2 {
			t.Fatalf("Run = %v; %d requests at 100/s took %.2fs, want about 20s", err, rep.Requests, rep.WallS)
		}
	})
	t.Run("a duration bounds the arrivals", func(t *testing.T) {
		counts := map[uint64]int{}
		for _, seed := range []uint64{1, 1, 2} {
			cfg := base(newFakeClock())
			cfg.Concurrency, cfg.Rate, cfg.Requests, cfg.Duration, cfg.Seed = 0, 50, 0, 20*time.Second, seed
			rep, err := Run(testContext(t), cfg, &fakeTarget{})
			if err != nil {
				t.Fatal(err)
			}
			// 1 + Poisson(1000): σ about 32.
			if rep.Requests < 1001-160 || rep.Requests > 1001+160 || rep.WallS >= 20 {
				t.Errorf("seed %d: %d requests in %.2fs at 50/s for 20s", seed, rep.Requests, rep.WallS)
			}
			if c, ok := counts[seed]; ok && c != rep.Requests {
				t.Errorf("seed %d: %d requests, then %d", seed, c, rep.Requests)
			}
			counts[seed] = rep.Requests
		}
	})
	t.Run("open loop does not wait for replies", func(t *testing.T) {
		// No request ends before all have been sent.
		const total = 20
		f := &fakeTarget{before: func(ctx context.Context, f *fakeTarget, _ int) error {
			return f.waitStarted(ctx, total)
		}}
		cfg := base(newFakeClock())
		cfg.Concurrency, cfg.Rate, cfg.Requests = 0, 5, total
		rep, err := Run(testContext(t), cfg, f)
		if err != nil || f.maxInFlight != total || rep.OK != total {
			t.Fatalf("Run = %v; max in flight %d, ok %d, want %d", err, f.maxInFlight, rep.OK, total)
		}
	})
}

func TestRunDurationClosedLoop(t *testing.T) {
	clock := newFakeClock()
	// Each request takes 100ms, one at a time: ten fit in a second.
	f := &fakeTarget{clock: clock, prefill: 100 * time.Millisecond}
	cfg := base(clock)
	cfg.Concurrency, cfg.Requests, cfg.Duration, cfg.MaxTokens = 1, 0, time.Second, 1
	rep, err := Run(testContext(t), cfg, f)
	if err != nil || rep.Requests != 10 || rep.OK != 10 || rep.WallS != 1 {
		t.Fatalf("Run = %v; %d requests, %d ok in %gs, want 10 in 1s", err, rep.Requests, rep.OK, rep.WallS)
	}
}

func TestRunMix(t *testing.T) {
	run := func(seed uint64) []Request {
		f := &fakeTarget{}
		cfg := base(newFakeClock())
		cfg.Concurrency, cfg.Seed, cfg.Requests = 4, seed, 200
		cfg.PromptTokens, cfg.PromptSpread, cfg.MaxTokens, cfg.MaxTokensSpread, cfg.Temperature = 50, 0.5, 40, 0.25, 0.7
		if _, err := Run(testContext(t), cfg, f); err != nil {
			t.Fatal(err)
		}
		// Workers start requests in any order; the mix is the set.
		slices.SortFunc(f.reqs, func(a, b Request) int {
			return cmp.Or(cmp.Compare(a.Seed, b.Seed), strings.Compare(a.Prompt, b.Prompt))
		})
		return f.reqs
	}
	a, b, c := run(7), run(7), run(8)
	if !slices.Equal(a, b) {
		t.Error("the same seed sent different requests")
	}
	if slices.Equal(a, c) {
		t.Error("different seeds sent the same requests")
	}
	lengths := map[int]bool{}
	for _, r := range a {
		chars := float64(len(r.Prompt))
		if r.MaxTokens < 30 || r.MaxTokens > 50 || chars < 25*defaultCharsPerToken || chars > 75*defaultCharsPerToken+10 ||
			r.Seed == 0 || r.Temperature != 0.7 {
			t.Fatalf("request out of the mix's bounds: max_tokens %d, %d prompt chars, seed %d, temperature %g",
				r.MaxTokens, len(r.Prompt), r.Seed, r.Temperature)
		}
		lengths[r.MaxTokens] = true
	}
	if len(lengths) < 15 {
		t.Errorf("only %d distinct max_tokens in 200 requests spread over 30..50", len(lengths))
	}
}

// A prompt pool makes prompts repeat, a prefix starts every prompt the
// same way; neither changes the requests' other draws.
func TestRunPromptPoolAndPrefix(t *testing.T) {
	run := func(pool, prefix int) []Request {
		f := &fakeTarget{}
		cfg := base(newFakeClock())
		cfg.Concurrency, cfg.Requests, cfg.PromptPool, cfg.PrefixTokens = 1, 100, pool, prefix
		if _, err := Run(testContext(t), cfg, f); err != nil {
			t.Fatal(err)
		}
		return f.reqs
	}
	plain, pooled, prefixed := run(0, 0), run(5, 0), run(0, 30)
	distinct := func(reqs []Request) int {
		seen := map[string]bool{}
		for _, r := range reqs {
			seen[r.Prompt] = true
		}
		return len(seen)
	}
	if n := distinct(plain); n != 100 {
		t.Errorf("without a pool: %d distinct prompts of 100", n)
	}
	if n := distinct(pooled); n != 5 {
		t.Errorf("pool of 5: %d distinct prompts", n)
	}
	prefix := ""
	for i := range plain {
		if pooled[i].Seed != plain[i].Seed || pooled[i].MaxTokens != plain[i].MaxTokens || prefixed[i].Seed != plain[i].Seed {
			t.Fatalf("request %d: the pool or prefix changed other draws", i)
		}
		p, ok := strings.CutSuffix(prefixed[i].Prompt, " "+plain[i].Prompt)
		if !ok || (prefix != "" && p != prefix) || len(p) < 20*defaultCharsPerToken {
			t.Fatalf("request %d: %q is not a shared prefix of ~30 tokens and the plain prompt %q", i, prefixed[i].Prompt, plain[i].Prompt)
		}
		prefix = p
	}
}

func TestRunSizesPromptsByTheTargetsTokens(t *testing.T) {
	tests := []struct {
		name         string
		target       Target
		wantPerToken float64
		wantMeasured bool
	}{
		{"counted", fakeCounter{&fakeTarget{}, 4}, 4, true},
		{"assumed", &fakeTarget{}, defaultCharsPerToken, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base(newFakeClock())
			cfg.PromptTokens = 100
			rep, err := Run(testContext(t), cfg, tt.target)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(rep.PromptCharsPerToken-tt.wantPerToken) > 0.01 || rep.PromptCharsPerTokenMeasured != tt.wantMeasured {
				t.Errorf("chars per token %g (measured %v), want %g (%v)", rep.PromptCharsPerToken, rep.PromptCharsPerTokenMeasured, tt.wantPerToken, tt.wantMeasured)
			}
			var f *fakeTarget
			switch x := tt.target.(type) {
			case fakeCounter:
				f = x.fakeTarget
			case *fakeTarget:
				f = x
			}
			for _, r := range f.reqs {
				// At least the asked length, over by less than a word.
				if want := 100 * tt.wantPerToken; float64(len(r.Prompt)) < want-1 || float64(len(r.Prompt)) > want+10 {
					t.Fatalf("prompt of %d chars, want about %g", len(r.Prompt), want)
				}
			}
		})
	}
}

func TestRunInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(testContext(t))
	defer cancel()
	// Request 5 stops the run and waits for that to reach it.
	f := &fakeTarget{before: func(ctx context.Context, _ *fakeTarget, k int) error {
		if k < 5 {
			return nil
		}
		cancel()
		<-ctx.Done()
		return ctx.Err()
	}}
	cfg := base(newFakeClock())
	cfg.Concurrency = 2
	rep, err := Run(ctx, cfg, f)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v, want context.Canceled", err)
	}
	if rep.Interrupted < 1 || rep.OK < 4 || rep.OK+rep.Interrupted != rep.Requests || rep.Requests >= cfg.Requests || rep.Errors != 0 {
		t.Errorf("report after interruption: %d sent, %d ok, %d interrupted, %d errors", rep.Requests, rep.OK, rep.Interrupted, rep.Errors)
	}
}

func TestReportPrint(t *testing.T) {
	rep := Report{
		Target: "grpc 127.0.0.1:9090", Concurrency: 4, Seed: 1,
		Requests: 12, OK: 9, Cancelled: 2, Errors: 1,
		ErrorsByKind:  map[string]int{"HTTP 429": 1},
		ErrorExamples: map[string]string{"HTTP 429": "the server has too many\nrequests waiting"},
		WallS:         2, RequestsPerS: 4.5, OutputTokensPerS: 36, PromptCharsPerToken: 1.75, PromptCharsPerTokenMeasured: true,
		TTFTMS: Summary{N: 11, Mean: 12.5, P50: 12, P90: 20, P99: 30, Max: 31},
	}
	var buf bytes.Buffer
	if err := rep.Print(&buf); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		"grpc 127.0.0.1:9090, concurrency 4",
		"12 sent: 9 ok, 2 cancelled, 1 errors",
		"HTTP 429",
		"1, e.g. the server has too many requests waiting",
		"4.50 req/s, 36.0 output tok/s",
		"1.75 chars/token (measured)",
		"ttft          11  12.5  12.0  20.0  30.0  31.0",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}

// The JSON field names are an interface of `lumen bench serve --json`.
func TestReportJSONFields(t *testing.T) {
	b, err := json.Marshal(Report{ErrorsByKind: map[string]int{}})
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"target", "concurrency", "rate", "seed", "prompt_chars_per_token", "prompt_chars_per_token_measured",
		"requests", "ok", "cancelled", "errors", "interrupted", "cancel_missed", "errors_by_kind",
		"wall_s", "requests_per_s", "prompt_tokens", "cached_tokens", "completion_tokens",
		"input_tokens_per_s", "output_tokens_per_s", "ttft_ms", "tpot_ms", "e2e_ms",
		"server_queue_ms_mean", "server_prefill_ms_mean",
	}
	got := slices.Sorted(maps.Keys(fields))
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("JSON fields = %v, want %v", got, want)
	}
	var ttft map[string]float64
	if err := json.Unmarshal(fields["ttft_ms"], &ttft); err != nil || len(ttft) != 6 {
		t.Errorf("ttft_ms = %s, want n, mean, p50, p90, p99, max", fields["ttft_ms"])
	}
}
