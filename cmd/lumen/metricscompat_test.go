package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/lumenllm/lumen/internal/loadgen"
	"github.com/lumenllm/lumen/internal/scheduler"
)

// gauge reads one gauge sample of name whose labels include want.
func gauge(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	f, ok := fams[name]
	if !ok || f.GetType() != dto.MetricType_GAUGE {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if labels[k] != v {
				continue next
			}
		}
		return m.GetGauge().GetValue(), true
	}
	return 0, false
}

// TestModelServerMetrics: the gauges an inference gateway's endpoint
// picker reads — queue depth, running requests, KV-cache usage as a 0–1
// fraction (cells kept only for prefix reuse count as free), slots, the
// cache's shape — and, with --metrics-compat vllm, the same under vLLM's
// names with model_name, read while a request is held mid-decode.
func TestModelServerMetrics(t *testing.T) {
	gate := &gatedEngine{}
	httpAddr, _ := startServeHooked(t, serveHooks{engine: func(e scheduler.Engine) scheduler.Engine { gate.Engine = e; return gate }},
		nil, "--metrics-compat", "vllm", "--model-name", "tiny")
	url := "http://" + httpAddr + "/metrics"
	scrape := func() map[string]*dto.MetricFamily {
		t.Helper()
		fams, err := loadgen.ScrapeMetrics(context.Background(), http.DefaultClient, url)
		if err != nil {
			t.Fatal(err)
		}
		return fams
	}
	fams := scrape()
	model := map[string]string{"model_name": "tiny"}
	for name, want := range map[string]float64{"vllm:num_requests_running": 0, "vllm:num_requests_waiting": 0, "vllm:kv_cache_usage_perc": 0, "lumen_kv_cache_usage_ratio": 0, "lumen_slots": 4} {
		labels := model
		if !strings.HasPrefix(name, "vllm:") {
			labels = nil
		}
		if got, ok := gauge(fams, name, labels); !ok || got != want {
			t.Errorf("idle: %s = %v (found %v), want %v", name, got, ok, want)
		}
	}
	size, _ := gauge(fams, "lumen_kv_cache_size_cells", nil)
	info := map[string]string{"block_size": "1", "num_cells": fmt.Sprint(size), "slots": "4", "cells_per_slot": fmt.Sprint(size / 4)}
	if v, ok := gauge(fams, "lumen_cache_config_info", info); size <= 0 || !ok || v != 1 {
		t.Errorf("lumen_cache_config_info %v: %v %v, want 1", info, v, ok)
	}

	release, _ := gate.arm(3)
	defer release()
	done := make(chan error, 1)
	go func() {
		var out map[string]any
		done <- postJSON("http://"+httpAddr+"/v1/completions", `{"prompt":"Hold me while the gauges are read","max_tokens":8,"ignore_eos":true}`, &out)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		fams = scrape()
		// Running, and its first steps done (the gate holds the third).
		running, _ := gauge(fams, "vllm:num_requests_running", model)
		if used, _ := gauge(fams, "lumen_kv_cache_used_cells", nil); running == 1 && used > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the held request never showed as running")
		}
		time.Sleep(10 * time.Millisecond)
	}
	used, _ := gauge(fams, "lumen_kv_cache_used_cells", nil)
	cached, _ := gauge(fams, "lumen_kv_cache_cached_cells", nil)
	ratio, _ := gauge(fams, "lumen_kv_cache_usage_ratio", nil)
	perc, _ := gauge(fams, "vllm:kv_cache_usage_perc", model)
	if want := (used - cached) / size; ratio <= 0 || ratio > 1 || ratio != want || perc != ratio {
		t.Errorf("running: usage ratio %v, vllm %v; want (used %v - cached %v)/%v = %v", ratio, perc, used, cached, size, want)
	}
	release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Finished: its cells stay for prefix reuse, which is free for routing.
	fams = scrape()
	if used, _ := gauge(fams, "lumen_kv_cache_used_cells", nil); used == 0 {
		t.Error("the finished request's cells were not kept")
	}
	if ratio, _ := gauge(fams, "lumen_kv_cache_usage_ratio", nil); ratio != 0 {
		t.Errorf("after the request: usage ratio %v, want 0 (its cells are reclaimable)", ratio)
	}

	if _, _, err := runCLI(t, "serve", "--metrics-compat", "sglang"); err == nil || !strings.Contains(err.Error(), "metrics-compat") {
		t.Errorf("serve --metrics-compat sglang: %v, want a usage error", err)
	}
}
