package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/lumenllm/lumen/internal/loadgen"
)

// runBenchJSON runs `lumen bench serve ... --json` in-process and decodes
// its report.
func runBenchJSON(t *testing.T, args ...string) (loadgen.Report, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	e := env{stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" }}
	err := run(context.Background(), append([]string{"bench", "serve", "--json"}, args...), e)
	var rep loadgen.Report
	if stdout.Len() > 0 {
		if derr := json.Unmarshal(stdout.Bytes(), &rep); derr != nil {
			t.Fatalf("report is not JSON: %v\n%s", derr, stdout.String())
		}
	}
	if stderr.Len() > 0 {
		t.Logf("stderr: %s", stderr.String())
	}
	return rep, err
}

func TestBenchServeEndToEnd(t *testing.T) {
	httpAddr, grpcAddr := startServe(t, "--api-key", "bench-key")
	tests := []struct {
		protocol, addr string
	}{
		{"grpc", grpcAddr},
		{"http", httpAddr},
	}
	for _, tt := range tests {
		t.Run(tt.protocol, func(t *testing.T) {
			rep, err := runBenchJSON(t, "--protocol", tt.protocol, "--addr", tt.addr, "--api-key", "bench-key",
				"--concurrency", "4", "--requests", "12", "--max-tokens", "8", "--prompt-tokens", "24", "--cancel-fraction", "0.25")
			if err != nil {
				t.Fatalf("bench serve: %v", err)
			}
			t.Logf("%+v", rep)
			if rep.Requests != 12 || rep.OK+rep.Cancelled != 12 || rep.Errors != 0 || rep.Interrupted != 0 {
				t.Fatalf("requests %d: %d ok + %d cancelled, %d errors %v, %d interrupted; want 12 ok or cancelled",
					rep.Requests, rep.OK, rep.Cancelled, rep.Errors, rep.ErrorExamples, rep.Interrupted)
			}
			if rep.OK == 0 || rep.Cancelled+rep.CancelMissed == 0 {
				t.Errorf("%d ok, %d cancelled, %d cancellations missed: want both kinds of request", rep.OK, rep.Cancelled, rep.CancelMissed)
			}
			if s := rep.TTFTMS; s.N == 0 || s.P50 <= 0 || s.Max <= 0 || s.Mean <= 0 {
				t.Errorf("ttft = %+v, want positive values", s)
			}
			if s := rep.E2EMS; s.N != rep.OK || s.P50 < rep.TTFTMS.P50/2 {
				t.Errorf("e2e = %+v for %d ok requests (ttft %+v)", s, rep.OK, rep.TTFTMS)
			}
			// The generated model never stops early: all 8 tokens come.
			if rep.CompletionTokens != 8*rep.OK || rep.PromptTokens < 10*rep.OK || rep.OutputTokensPerS <= 0 || rep.WallS <= 0 {
				t.Errorf("tokens: %d prompt, %d completion for %d ok; %.1f tok/s over %.3fs",
					rep.PromptTokens, rep.CompletionTokens, rep.OK, rep.OutputTokensPerS, rep.WallS)
			}
			if !rep.PromptCharsPerTokenMeasured || !strings.HasPrefix(rep.Target, tt.protocol+" ") {
				t.Errorf("target %q, chars per token %g measured %v", rep.Target, rep.PromptCharsPerToken, rep.PromptCharsPerTokenMeasured)
			}
		})
	}
	t.Run("wrong key", func(t *testing.T) {
		for _, tt := range []struct{ protocol, addr, kind string }{
			{"grpc", grpcAddr, "Unauthenticated"},
			{"http", httpAddr, "HTTP 401"},
		} {
			rep, err := runBenchJSON(t, "--protocol", tt.protocol, "--addr", tt.addr, "--api-key", "wrong", "--requests", "3", "--max-tokens", "2")
			if err == nil || rep.Errors != 3 || rep.ErrorsByKind[tt.kind] != 3 {
				t.Errorf("%s: err %v, errors %v; want 3 %s and an error", tt.protocol, err, rep.ErrorsByKind, tt.kind)
			}
		}
	})
	t.Run("text report", func(t *testing.T) {
		out, stderr, err := runCLI(t, "bench", "serve", "--addr", grpcAddr, "--api-key", "bench-key", "--rate", "50", "--requests", "4", "--prompt-tokens", "16", "--max-tokens", "4")
		if err != nil {
			t.Fatalf("bench serve: %v\n%s", err, stderr)
		}
		for _, want := range []string{"rate 50/s (Poisson)", "4 sent: 4 ok", "ttft", "tpot", "e2e"} {
			if !strings.Contains(out, want) {
				t.Errorf("report lacks %q:\n%s", want, out)
			}
		}
	})
	t.Run("step phases", func(t *testing.T) {
		out, stderr, err := runCLI(t, "bench", "serve", "--addr", grpcAddr, "--api-key", "bench-key", "--requests", "4",
			"--prompt-tokens", "16", "--max-tokens", "4", "--metrics-url", "http://"+httpAddr+"/metrics")
		if err != nil {
			t.Fatalf("bench serve: %v\n%s", err, stderr)
		}
		// Each phase line: name, seconds, share of step time, of wall time.
		line := regexp.MustCompile(`(?m)^(decode|build|sample|emit|gap) +([0-9.]+) +([0-9.]+)% +([0-9.]+)%$`)
		rows := line.FindAllStringSubmatch(out, -1)
		if len(rows) != 5 {
			t.Fatalf("want 5 phase rows in:\n%s", out)
		}
		sum := 0.0
		for _, r := range rows {
			v, _ := strconv.ParseFloat(r[3], 64)
			sum += v
			if r[1] == "decode" && v <= 0 {
				t.Errorf("decode share %v%%, want > 0", v)
			}
		}
		if sum < 99 || sum > 101 {
			t.Errorf("phase shares sum to %.1f%%, want 100:\n%s", sum, out)
		}
	})
}

func TestBenchServeFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"concurrency and rate", []string{"--concurrency", "2", "--rate", "1"}, "not both"},
		{"unknown protocol", []string{"--protocol", "udp"}, "--protocol must be grpc, http or openai"},
		{"spread out of range", []string{"--prompt-spread", "1.5"}, "prompt spread"},
		{"cancel fraction out of range", []string{"--cancel-fraction", "-1"}, "cancel fraction"},
		{"no requests", []string{"--requests", "0"}, "number of requests or a duration"},
		{"positional argument", []string{"extra"}, "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := runCLI(t, append([]string{"bench", "serve"}, tt.args...)...)
			var ue usageError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want a usage error naming %q", err, tt.want)
			}
		})
	}
}

// bench serve speaks OpenAI's completions API to any server, and --peer
// sends the same requests to two servers in alternating rounds and prints
// their ratio: here two Lumen servers, one of them as the "peer".
func TestBenchServeComparesWithAPeer(t *testing.T) {
	a, _ := startServe(t)
	b, _ := startServe(t)
	rep, err := runBenchJSON(t, "--protocol", "openai", "--addr", a, "--requests", "6", "--concurrency", "2",
		"--max-tokens", "5", "--prompt-tokens", "16", "--ignore-eos")
	if err != nil {
		t.Fatalf("bench serve --protocol openai: %v", err)
	}
	if rep.OK != 6 || rep.CompletionTokens != 30 || rep.PromptTokens == 0 || !strings.HasPrefix(rep.Target, "openai ") {
		t.Errorf("openai: %d ok, %d completion / %d prompt tokens, target %q; want 6 ok, 30 tokens", rep.OK, rep.CompletionTokens, rep.PromptTokens, rep.Target)
	}
	out, stderr, err := runCLI(t, "bench", "serve", "--addr", a, "--peer", "http://"+b, "--rounds", "2", "--requests", "4",
		"--max-tokens", "4", "--prompt-tokens", "16", "--ignore-eos")
	if err != nil {
		t.Fatalf("bench serve --peer: %v\n%s", err, stderr)
	}
	rounds := regexp.MustCompile(`(?m)^[12] +openai http://\S+ +4 `).FindAllString(out, -1)
	ratio := regexp.MustCompile(`(?m)ratio \(first ÷ second\) +([0-9.]+) +([0-9.]+) +([0-9.]+)$`).FindStringSubmatch(out)
	if len(rounds) != 4 || ratio == nil {
		t.Fatalf("want 4 round lines (2 rounds × 2 servers) and a ratio line in:\n%s", out)
	}
	for _, r := range ratio[1:] {
		if v, err := strconv.ParseFloat(r, 64); err != nil || v <= 0 {
			t.Errorf("ratio %q, want a positive number", r)
		}
	}
}

// bench engine --replay runs bench serve's mix through the scheduler in
// process: every request of every concurrency completes, at the output
// length asked (end of generation ignored), with timings measured.
func TestBenchEngineReplay(t *testing.T) {
	model := filepath.Join(os.Getenv("LUMEN_TEST_MODELS"), "llama-2-tiny-random.gguf")
	out, stderr, err := runCLI(t, "bench", "engine", "--model", model, "--threads", "1", "--ctx-size", "2048",
		"--replay", "1,3", "--replay-requests", "2", "--replay-max-tokens", "5", "--replay-prompt-tokens", "12")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	rows := 0
	for line := range strings.SplitSeq(out, "\n") {
		f := strings.Fields(line)
		if len(f) != 6 || (f[0] != "1" && f[0] != "3") {
			continue
		}
		rows++
		conc, _ := strconv.Atoi(f[0])
		if reqs, _ := strconv.Atoi(f[1]); reqs != 2*conc {
			t.Errorf("concurrency %d: %s requests completed, want %d", conc, f[1], 2*conc)
		}
		for _, v := range f[3:] {
			if x, err := strconv.ParseFloat(v, 64); err != nil || x <= 0 {
				t.Errorf("concurrency %d: figure %q is not a positive measurement", conc, v)
			}
		}
	}
	if rows != 2 {
		t.Errorf("want one row per concurrency, got %d in:\n%s", rows, out)
	}
}

// A bench engine run that cannot fit its context says so before it
// starts, rather than failing mid-run with llama.cpp's "no KV slot".
func TestBenchEngineTooSmallContext(t *testing.T) {
	model := filepath.Join(os.Getenv("LUMEN_TEST_MODELS"), "llama-2-tiny-random.gguf")
	_, _, err := runCLI(t, "bench", "engine", "--model", model, "--threads", "1", "--ctx-size", "256", "--sequences", "16", "--prompt-tokens", "64")
	if err == nil || !strings.Contains(err.Error(), "need 800 cells, the context holds 256") {
		t.Errorf("err = %v, want the cells the run needs and the context's size", err)
	}
}

// bench engine --choices: one request of n choices computes its prompt
// once (prompt + one token per other choice, per round); --embed: a row
// per batch size and the ratio between them.
func TestBenchEngineChoicesAndEmbed(t *testing.T) {
	model := filepath.Join(os.Getenv("LUMEN_TEST_MODELS"), "llama-2-tiny-random.gguf")
	out, stderr, err := runCLI(t, "bench", "engine", "--model", model, "--threads", "1", "--ctx-size", "2048",
		"--choices", "3", "--choices-rounds", "2", "--choices-prompt-tokens", "40", "--choices-max-tokens", "4")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	// Rows: name words…, rounds, prompt tokens, output tok/s, computed.
	rows := map[string][3]float64{}
	for line := range strings.SplitSeq(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		var v [3]float64
		ok := true
		for k, s := range f[len(f)-3:] {
			x, err := strconv.ParseFloat(s, 64)
			ok = ok && err == nil && x > 0
			v[k] = x
		}
		if ok {
			rows[f[0]] = v
		}
	}
	one, sep := rows["n=3,"], rows["3"]
	if one[0] == 0 || sep[0] == 0 || !strings.Contains(out, "ratio (n choices ÷ separate)") {
		t.Fatalf("rows not found in:\n%s", out)
	}
	// n choices: the prompt once, then one token for each other choice.
	// Separate requests: at least once, at most three times.
	if prompt := one[0]; one[2] != prompt+2 || sep[2] < sep[0] || sep[2] > 3*sep[0] {
		t.Errorf("n=3 computed %v prompt tokens per round for a %v-token prompt (want %v); separate requests %v for %v",
			one[2], prompt, prompt+2, sep[2], sep[0])
	}

	out, stderr, err = runCLI(t, "bench", "engine", "--model", model, "--threads", "1", "--embed", "1,4", "--embed-inputs", "8", "--embed-tokens", "8")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	embedRows := 0
	for line := range strings.SplitSeq(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 4 && (f[0] == "1" || f[0] == "4") && f[1] == "8" {
			if x, err := strconv.ParseFloat(f[3], 64); err == nil && x > 0 {
				embedRows++
			}
		}
	}
	if embedRows != 2 || !strings.Contains(out, "ratio (batch 4 ÷ batch 1)") {
		t.Errorf("want a row per batch size and their ratio in:\n%s", out)
	}
}
