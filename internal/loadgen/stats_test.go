package loadgen

import (
	"math"
	"testing"
)

func TestPercentile(t *testing.T) {
	tests := []struct {
		name   string
		sorted []float64
		p      float64
		want   float64
	}{
		{"empty", nil, 50, 0},
		{"one value", []float64{7}, 99, 7},
		{"minimum", []float64{1, 2, 3, 4}, 0, 1},
		{"maximum", []float64{1, 2, 3, 4}, 100, 4},
		{"median of odd count", []float64{1, 2, 3, 4, 5}, 50, 3},
		{"median of even count interpolates", []float64{1, 2, 3, 4}, 50, 2.5},
		{"p90 of 1..10", []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 90, 9.1},
		{"p99 of 1..100", seq(1, 100), 99, 99.01},
		{"p50 of 1..100", seq(1, 100), 50, 50.5},
		{"between unequal neighbours", []float64{10, 20, 40}, 75, 30},
		{"below 0 clamps", []float64{1, 2}, -5, 1},
		{"above 100 clamps", []float64{1, 2}, 150, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Percentile(tt.sorted, tt.p); math.Abs(got-tt.want) > 1e-9 {
				t.Errorf("Percentile(%v, %g) = %g, want %g", tt.sorted, tt.p, got, tt.want)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	tests := []struct {
		name   string
		values []float64
		want   Summary
	}{
		{"none", nil, Summary{}},
		{"one", []float64{5}, Summary{N: 1, Mean: 5, P50: 5, P90: 5, P99: 5, Max: 5}},
		{"unsorted", []float64{4, 1, 3, 2}, Summary{N: 4, Mean: 2.5, P50: 2.5, P90: 3.7, P99: 3.97, Max: 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := append([]float64(nil), tt.values...)
			got := Summarize(tt.values)
			if !near(got, tt.want) {
				t.Errorf("Summarize(%v) = %+v, want %+v", tt.values, got, tt.want)
			}
			for i := range in {
				if in[i] != tt.values[i] {
					t.Fatalf("Summarize reordered its input: %v", tt.values)
				}
			}
		})
	}
}

func seq(from, to int) []float64 {
	var s []float64
	for i := from; i <= to; i++ {
		s = append(s, float64(i))
	}
	return s
}

func near(a, b Summary) bool {
	eq := func(x, y float64) bool { return math.Abs(x-y) < 1e-9 }
	return a.N == b.N && eq(a.Mean, b.Mean) && eq(a.P50, b.P50) && eq(a.P90, b.P90) && eq(a.P99, b.P99) && eq(a.Max, b.Max)
}
