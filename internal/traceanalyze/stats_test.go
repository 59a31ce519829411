package traceanalyze

import (
	"testing"
	"time"
)

func seq(from, to int) []time.Duration {
	var out []time.Duration
	for i := from; i <= to; i++ {
		out = append(out, time.Duration(i))
	}
	return out
}

func TestPercentileNearestRank(t *testing.T) {
	tests := []struct {
		name   string
		sorted []time.Duration
		p      int
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one value is every percentile", seq(5, 5), 50, 5},
		{"one value p99", seq(5, 5), 99, 5},
		{"four values p50 is the 2nd", seq(1, 4), 50, 2},
		{"four values p99 is the max", seq(1, 4), 99, 4},
		{"ten values p50", seq(1, 10), 50, 5},
		{"ten values p90", seq(1, 10), 90, 9},
		{"ten values p99 is the max", seq(1, 10), 99, 10},
		{"hundred values p99", seq(1, 100), 99, 99},
		{"hundred values p100", seq(1, 100), 100, 100},
		{"101 values p50 rounds the rank up", seq(1, 101), 50, 51},
		{"101 values p99", seq(1, 101), 99, 100},
		{"200 values p99", seq(1, 200), 99, 198},
		{"p below 1 is p1", seq(1, 10), 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("Percentile(%v, %d) = %v, want %v", tt.sorted, tt.p, got, tt.want)
			}
		})
	}
}

func TestOperationStats(t *testing.T) {
	spans := []Span{
		span("t", "1", "", "a", 0, 3),
		span("t", "2", "", "a", 0, 1),
		span("t", "3", "", "a", 0, 2),
		span("u", "4", "", "b", 0, 10),
		span("u", "5", "", "c", 5, 4), // ends before it starts: zero
	}
	got := operationStats(spans)
	want := []OpStats{
		{Name: "b", Count: 1, Total: msDur(10), Mean: msDur(10), P50: msDur(10), P99: msDur(10), Max: msDur(10)},
		{Name: "a", Count: 3, Total: msDur(6), Mean: msDur(2), P50: msDur(2), P99: msDur(3), Max: msDur(3)},
		{Name: "c", Count: 1},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("row %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestDurJSONIsMilliseconds(t *testing.T) {
	for _, tt := range []struct {
		d    Dur
		want string
	}{{Dur(1500 * time.Microsecond), "1.5"}, {Dur(1), "0.000001"}, {0, "0"}, {Dur(2 * time.Second), "2000"}} {
		b, _ := tt.d.MarshalJSON()
		if string(b) != tt.want {
			t.Errorf("%v → %s, want %s", time.Duration(tt.d), b, tt.want)
		}
	}
}
