package liveview

import (
	"slices"
	"sync"
	"time"
)

// Sample is one point of the live series, taken about once a second.
// Pointer fields are null in JSON when there is nothing to show: no
// request finished within the TTFT window, no engine step since the last
// sample, no scheduler yet (the model is loading).
type Sample struct {
	// TimeMs is when the sample was taken, in Unix milliseconds.
	TimeMs int64 `json:"t"`
	// RequestsPerSec counts request spans that ended since the previous
	// sample, per second.
	RequestsPerSec float64 `json:"requestsPerSec"`
	// TTFTP50Ms is the median time to first token (nearest rank) of the
	// requests that finished within the TTFT window.
	TTFTP50Ms *float64 `json:"ttftP50Ms"`
	// OutputTokensPerSec counts the output tokens of the requests that
	// finished since the previous sample, per second (a request's tokens
	// count when it finishes).
	OutputTokensPerSec float64 `json:"outputTokensPerSec"`
	// BatchSize is the mean number of sequences per engine step over the
	// batch spans that ended since the previous sample.
	BatchSize *float64 `json:"batchSize"`
	// From the scheduler's Stats at sample time.
	QueueDepth      *int     `json:"queueDepth"`
	ActiveSequences *int     `json:"activeSequences"`
	KVUsedCells     *int     `json:"kvUsedCells"`
	KVSizeCells     *int     `json:"kvSizeCells"`
	KVUsedRatio     *float64 `json:"kvUsedRatio"`
}

// series is a bounded history of samples, oldest overwritten first.
type series struct {
	mu   sync.Mutex
	buf  []Sample
	next int
	n    int
}

func newSeries(size int) *series { return &series{buf: make([]Sample, size)} }

func (s *series) add(x Sample) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.buf[s.next] = x
	s.next = (s.next + 1) % len(s.buf)
	s.n = min(s.n+1, len(s.buf))
}

// after returns the samples taken after Unix millisecond ms, oldest
// first.
func (s *series) after(ms int64) []Sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Sample, 0, s.n)
	for i := s.n; i > 0; i-- {
		x := s.buf[(s.next-i+len(s.buf))%len(s.buf)]
		if x.TimeMs > ms {
			out = append(out, x)
		}
	}
	return out
}

// sample turns what the store counted since the previous sample, and the
// scheduler's load now, into one Sample. Only the sampler goroutine (or
// a test standing in for it) calls it.
func (v *View) sample(now time.Time) Sample {
	dt := now.Sub(v.lastSample)
	if dt <= 0 {
		dt = v.cfg.Interval
	}
	v.lastSample = now
	t, ttfts := v.store.drain(now.Add(-v.cfg.TTFTWindow))
	x := Sample{
		TimeMs:             now.UnixMilli(),
		RequestsPerSec:     float64(t.requests) / dt.Seconds(),
		OutputTokensPerSec: float64(t.outputTokens) / dt.Seconds(),
	}
	if len(ttfts) > 0 {
		p := median(ttfts)
		x.TTFTP50Ms = &p
	}
	if t.batches > 0 {
		b := float64(t.batchSeqs) / float64(t.batches)
		x.BatchSize = &b
	}
	if f := v.stats.Load(); f != nil {
		st := (*f)()
		x.QueueDepth, x.ActiveSequences = &st.Queued, &st.Active
		x.KVUsedCells, x.KVSizeCells = &st.KVUsed, &st.KVSize
		if st.KVSize > 0 {
			r := float64(st.KVUsed) / float64(st.KVSize)
			x.KVUsedRatio = &r
		}
	}
	v.series.add(x)
	return x
}

// median is the nearest-rank 50th percentile: the ceil(n/2)-th smallest.
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[(len(s)+1)/2-1]
}
