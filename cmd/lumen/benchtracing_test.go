package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lumenllm/lumen/internal/synth"
)

// TestBenchTracingSmoke runs `lumen bench tracing` briefly against a real
// Jaeger: it measures both modes in alternating order, prints the on/off
// ratio and the per-pair spread per concurrency, and the "on" mode's
// spans reach Jaeger. (What
// the figures are is the benchmark's business, not the test's.)
func TestBenchTracingSmoke(t *testing.T) {
	otlp, queryURL := startJaeger(t)
	cfg, err := synth.Preset("tiny")
	if err != nil {
		t.Fatal(err)
	}
	model := filepath.Join(t.TempDir(), "smoke.gguf")
	if err := synth.WriteFile(model, cfg, nil); err != nil {
		t.Fatal(err)
	}
	out, stderr, err := runCLI(t, "bench", "tracing", "--otlp-endpoint", otlp, "--model", model,
		"--threads", "1", "--ctx-size", "1024", "--concurrency", "1,2", "--rounds", "2",
		"--requests-per-worker", "1", "--prompt-tokens", "8", "--max-tokens", "4")
	if err != nil {
		t.Fatalf("bench tracing: %v\nstdout:\n%s\nstderr:\n%s", err, out, stderr)
	}
	t.Logf("\n%s", out)

	// Each concurrency's pairs alternate their order from round to round,
	// neighbouring concurrencies starting opposite.
	var order []string
	for _, m := range regexp.MustCompile(`(?m)^round (\d)  c=1 (off|on)-first off [\d.]+ on [\d.]+ tok/s  c=2 (off|on)-first off [\d.]+ on [\d.]+ tok/s$`).FindAllStringSubmatch(out, -1) {
		order = append(order, m[1]+" "+m[2]+","+m[3])
	}
	if got, want := strings.Join(order, "; "), "1 off,on; 2 on,off"; got != want {
		t.Errorf("rounds measured %q, want %q", got, want)
	}
	for _, c := range []string{"1", "2"} {
		row := regexp.MustCompile(`(?m)^ *` + c + `  +([\d.]+)  +([\d.]+)  +([\d.]+)  +([\d.]+)  +([\d.]+)–([\d.]+) *$`).FindStringSubmatch(out)
		if row == nil {
			t.Errorf("no summary row for concurrency %s (off tok/s, on tok/s, on/off, median pair, pair range)", c)
			continue
		}
		var f [6]float64
		for i := range f {
			f[i], _ = strconv.ParseFloat(row[i+1], 64)
		}
		off, on, ratio, med, lo, hi := f[0], f[1], f[2], f[3], f[4], f[5]
		// The printed figures are rounded: the ratio matches them to 1%,
		// and the median of two pairs lies between them.
		if off <= 0 || on <= 0 || ratio <= 0 || math.Abs(on/off-ratio) > 0.01*ratio {
			t.Errorf("concurrency %s: off %v, on %v, ratio %v", c, off, on, ratio)
		}
		if lo <= 0 || lo > hi || math.Abs(med-(lo+hi)/2) > 0.0011 {
			t.Errorf("concurrency %s: median pair %v, range %v–%v", c, med, lo, hi)
		}
	}
	spans := regexp.MustCompile(`tracing on: (\d+) spans sampled \(([\d.]+) per request, batch spans included\), 0 dropped by the exporter`).FindStringSubmatch(out)
	// Each measured request has at least its transport, request, queue,
	// prefill and decode spans.
	if spans == nil {
		t.Errorf("no span line with 0 dropped")
	} else if per, _ := strconv.ParseFloat(spans[2], 64); per < 5 {
		t.Errorf("%s spans per request, want at least 5", spans[2])
	}
	if !strings.Contains(out, "off: the SDK disabled (as by OTEL_SDK_DISABLED=true)") || !strings.Contains(out, "on:  every span sampled (an always-on sampler") {
		t.Errorf("the report does not say what off and on mean")
	}

	// "on" exported to Jaeger: the requests' traces are there.
	pollUntil(t, 30*time.Second, func(ctx context.Context) error {
		traces, err := findJaegerTraces(ctx, queryURL, url.Values{
			"service": {"lumen"}, "operation": {"text_completion smoke"}, "limit": {"100"}, "lookback": {"1h"}})
		if err != nil {
			return err
		}
		// One "on" server: 2 warm-up requests, then 1 + 2 in each of 2 rounds.
		if len(traces) < 2+2*(1+2) {
			return fmt.Errorf("%d request traces in Jaeger, want %d", len(traces), 2+2*(1+2))
		}
		return nil
	})
}

func TestBenchTracingFlags(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		usage bool
		want  string
	}{
		{"no endpoint", nil, true, "--otlp-endpoint is required"},
		{"bad concurrency", []string{"--otlp-endpoint", "127.0.0.1:1", "--concurrency", "1,x"}, true, "--concurrency"},
		{"no rounds", []string{"--otlp-endpoint", "127.0.0.1:1", "--rounds", "0"}, true, "must be positive"},
		{"positional argument", []string{"--otlp-endpoint", "127.0.0.1:1", "extra"}, true, "unexpected arguments"},
		{"receiver down", []string{"--otlp-endpoint", closedPort(t), "--receiver-wait", "300ms"}, false, "no OTLP receiver at 127.0.0.1:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := runCLI(t, append([]string{"bench", "tracing"}, tt.args...)...)
			var ue usageError
			if err == nil || !strings.Contains(err.Error(), tt.want) || errors.As(err, &ue) != tt.usage {
				t.Errorf("err = %v (usage error: %v), want one naming %q (usage error: %v)", err, errors.As(err, &ue), tt.want, tt.usage)
			}
		})
	}
}

// Both servers read the process environment's OTEL_* variables, so
// OTEL_SDK_DISABLED=true would leave nothing to compare.
func TestBenchTracingRefusesDisabledSDK(t *testing.T) {
	t.Setenv("OTEL_SDK_DISABLED", "true")
	_, _, err := runCLI(t, "bench", "tracing", "--otlp-endpoint", "127.0.0.1:1", "--receiver-wait", "0s")
	if err == nil || !strings.Contains(err.Error(), "OTEL_SDK_DISABLED=true would disable") {
		t.Errorf("err = %v, want one naming OTEL_SDK_DISABLED", err)
	}
}
