package traceanalyze

import (
	"cmp"
	"slices"
	"strconv"
	"time"
)

// Dur is a duration that JSON encodes as milliseconds (a float, exact to
// the nanosecond).
type Dur time.Duration

// MarshalJSON writes d in milliseconds.
func (d Dur) MarshalJSON() ([]byte, error) {
	return strconv.AppendFloat(nil, float64(d)/1e6, 'f', -1, 64), nil
}

// Std is d as a time.Duration.
func (d Dur) Std() time.Duration { return time.Duration(d) }

// Percentile is the nearest-rank percentile of ascending values: the
// smallest value v such that at least p% of the values are ≤ v, that is
// sorted[⌈p·n/100⌉-1] (for p in 1..100). It interpolates nothing, so
// every percentile is a duration that was observed; with fewer than 100
// values p99 is the maximum. Empty input gives zero.
func Percentile(sorted []time.Duration, p int) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	p = min(max(p, 1), 100)
	rank := (p*n + 99) / 100 // ⌈p·n/100⌉ in integers
	return sorted[rank-1]
}

// OpStats summarises the durations of all spans with one name.
type OpStats struct {
	Name  string `json:"name"`
	Count int    `json:"count"`
	Total Dur    `json:"total_ms"`
	// Mean is Total/Count, truncated to the nanosecond.
	Mean Dur `json:"mean_ms"`
	P50  Dur `json:"p50_ms"`
	P99  Dur `json:"p99_ms"`
	Max  Dur `json:"max_ms"`
}

// operationStats groups spans by name; the result is ordered by total
// time, largest first (then by name).
func operationStats(spans []Span) []OpStats {
	byName := map[string][]time.Duration{}
	for i := range spans {
		byName[spans[i].Name] = append(byName[spans[i].Name], spans[i].Duration())
	}
	out := make([]OpStats, 0, len(byName))
	for name, ds := range byName {
		slices.Sort(ds)
		var total time.Duration
		for _, d := range ds {
			total += d
		}
		out = append(out, OpStats{
			Name: name, Count: len(ds), Total: Dur(total), Mean: Dur(total / time.Duration(len(ds))),
			P50: Dur(Percentile(ds, 50)), P99: Dur(Percentile(ds, 99)), Max: Dur(ds[len(ds)-1]),
		})
	}
	slices.SortFunc(out, func(a, b OpStats) int { return cmp.Or(cmp.Compare(b.Total, a.Total), cmp.Compare(a.Name, b.Name)) })
	return out
}
