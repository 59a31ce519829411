package liveview

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/lumenllm/lumen/internal/scheduler"
)

func ptr[T any](v T) *T { return &v }

func TestSample(t *testing.T) {
	stats := scheduler.Stats{Queued: 3, Active: 4, Slots: 4, KVUsed: 512, KVSize: 2048}
	tests := []struct {
		name  string
		do    func(r *rig) // may move the clock
		stats *scheduler.Stats
		after time.Duration // from the previous sample to this one
		want  Sample
	}{
		{
			name:  "nothing happened and no scheduler yet",
			do:    func(*rig) {},
			after: time.Second,
			want:  Sample{},
		},
		{
			name: "rates are per second of the interval",
			do: func(r *rig) {
				r.request(reqSpec{out: 3, ttft: 20 * time.Millisecond})
				r.request(reqSpec{out: 5, ttft: 40 * time.Millisecond})
				r.request(reqSpec{out: 0, finish: scheduler.FinishCancelled}) // no token: no TTFT
			},
			after: 2 * time.Second,
			// Nearest-rank median of {20, 40} is 20.
			want: Sample{RequestsPerSec: 1.5, OutputTokensPerSec: 4, TTFTP50Ms: ptr(20.0)},
		},
		{
			name: "TTFT median over an odd count",
			do: func(r *rig) {
				for _, ms := range []time.Duration{50, 10, 30} {
					r.request(reqSpec{out: 1, ttft: ms * time.Millisecond})
				}
			},
			after: time.Second,
			want:  Sample{RequestsPerSec: 3, OutputTokensPerSec: 3, TTFTP50Ms: ptr(30.0)},
		},
		{
			name: "TTFT window forgets old requests",
			do: func(r *rig) {
				r.request(reqSpec{out: 1, ttft: 900 * time.Millisecond})
				r.clock.Advance(11 * time.Second) // past the 10s window
				r.request(reqSpec{out: 1, ttft: 15 * time.Millisecond})
			},
			after: 0, // sampled right after the second request
			want:  Sample{RequestsPerSec: 2.0 / 11, OutputTokensPerSec: 2.0 / 11, TTFTP50Ms: ptr(15.0)},
		},
		{
			name: "batch size is the mean over steps",
			do: func(r *rig) {
				bg := context.Background()
				r.step(bg)
				r.step(bg, bg)
				r.step(bg, bg, bg)
			},
			after: time.Second,
			want:  Sample{BatchSize: ptr(2.0)},
		},
		{
			name:  "queue depth and KV use from the scheduler",
			do:    func(*rig) {},
			stats: &stats,
			after: time.Second,
			want: Sample{QueueDepth: ptr(3), ActiveSequences: ptr(4), KVUsedCells: ptr(512), KVSizeCells: ptr(2048),
				KVUsedRatio: ptr(0.25)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{}
			if tt.stats != nil {
				s := *tt.stats
				cfg.Stats = func() scheduler.Stats { return s }
			}
			r := newRig(t, cfg)
			tt.do(r)
			now := r.clock.Advance(tt.after)
			got := r.view.sample(now)
			tt.want.TimeMs = now.UnixMilli()
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("sample\n got %s\nwant %s", dump(got), dump(tt.want))
			}
			if kept := r.view.series.after(-1 << 62); len(kept) != 1 || !reflect.DeepEqual(kept[0], got) {
				t.Errorf("series holds %v, want just the sample", kept)
			}
		})
	}
}

// dump shows a sample with its pointers followed, as the page sees it.
func dump(s Sample) string {
	b, err := json.Marshal(s)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

func TestSeriesKeepsBoundedHistory(t *testing.T) {
	r := newRig(t, Config{History: 3})
	var times []int64
	for range 5 {
		times = append(times, r.view.sample(r.clock.Advance(time.Second)).TimeMs)
	}
	got := func(since int64) []int64 {
		var ts []int64
		for _, s := range r.view.series.after(since) {
			ts = append(ts, s.TimeMs)
		}
		return ts
	}
	if all, want := got(-1<<62), times[2:]; !reflect.DeepEqual(all, want) {
		t.Errorf("kept %v, want the newest three %v, oldest first", all, want)
	}
	if since, want := got(times[3]), times[4:]; !reflect.DeepEqual(since, want) {
		t.Errorf("after %d: %v, want %v", times[3], since, want)
	}
}

func TestSetStatsLater(t *testing.T) {
	r := newRig(t, Config{})
	if s := r.view.sample(r.clock.Advance(time.Second)); s.QueueDepth != nil || s.KVUsedRatio != nil {
		t.Errorf("before SetStats: queue %v, kv %v; want none", s.QueueDepth, s.KVUsedRatio)
	}
	r.view.SetStats(func() scheduler.Stats { return scheduler.Stats{Queued: 7} })
	s := r.view.sample(r.clock.Advance(time.Second))
	if s.QueueDepth == nil || *s.QueueDepth != 7 || s.KVUsedRatio != nil {
		t.Errorf("after SetStats: queue %v, kv ratio %v; want 7 and none (KV size 0)", s.QueueDepth, s.KVUsedRatio)
	}
}

// TestSamplerGoroutine drives the sampler through its tick channel: a
// tick it has received is sampled before Close returns.
func TestSamplerGoroutine(t *testing.T) {
	tick := make(chan time.Time)
	r := newRig(t, Config{Tick: tick})
	r.request(reqSpec{out: 2, ttft: 5 * time.Millisecond})
	r.clock.Advance(time.Second)
	tick <- time.Time{} // unbuffered: the sampler has it
	if err := r.view.Close(); err != nil {
		t.Fatal(err)
	}
	kept := r.view.series.after(-1 << 62)
	if len(kept) != 1 || kept[0].RequestsPerSec != 1 || kept[0].TimeMs != r.clock.Now().UnixMilli() {
		t.Fatalf("series = %+v, want one sample of 1 request/s at the clock's time", kept)
	}
	// Close is idempotent; the store still serves what it has.
	if err := r.view.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestMedianNearestRank(t *testing.T) {
	for _, tt := range []struct {
		in   []float64
		want float64
	}{
		{[]float64{7}, 7},
		{[]float64{2, 1}, 1},
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2},
		{[]float64{5, 1, 4, 2, 3}, 3},
	} {
		in := append([]float64(nil), tt.in...)
		if got := median(tt.in); got != tt.want {
			t.Errorf("median(%v) = %v, want %v", tt.in, got, tt.want)
		}
		if !reflect.DeepEqual(in, tt.in) {
			t.Errorf("median reordered its input: %v", tt.in)
		}
	}
}
