package traceanalyze

import (
	"slices"
	"testing"
)

// seg is an expected segment: span id, offset and duration in ms.
type seg struct {
	id       string
	off, dur float64
}

func TestCriticalPath(t *testing.T) {
	tests := []struct {
		name      string
		spans     []Span
		wantRoot  string
		wantDur   float64
		wantSegs  []seg
		wantChain []string
	}{
		{
			// Touching siblings, as queue and prefill are: each is on the
			// path (Jaeger's UI would charge A and B to the root).
			name: "sequential children",
			spans: []Span{
				span("t", "r", "", "root", 0, 100),
				span("t", "a", "r", "A", 10, 30),
				span("t", "b", "r", "B", 30, 60),
				span("t", "c", "r", "C", 60, 90),
			},
			wantRoot: "root", wantDur: 100,
			wantSegs:  []seg{{"r", 0, 10}, {"a", 10, 20}, {"b", 30, 30}, {"c", 60, 30}, {"r", 90, 10}},
			wantChain: []string{"root", "A", "B", "C"},
		},
		{
			name: "parallel children: the one ending last, the other is off the path",
			spans: []Span{
				span("t", "r", "", "root", 0, 100),
				span("t", "a", "r", "A", 0, 80),
				span("t", "b", "r", "B", 10, 50),
			},
			wantRoot: "root", wantDur: 100,
			wantSegs:  []seg{{"a", 0, 80}, {"r", 80, 20}},
			wantChain: []string{"A", "root"},
		},
		{
			name: "overlapping children: the earlier one only until the later starts",
			spans: []Span{
				span("t", "r", "", "root", 0, 100),
				span("t", "a", "r", "A", 0, 60),
				span("t", "b", "r", "B", 40, 90),
			},
			wantRoot: "root", wantDur: 100,
			wantSegs:  []seg{{"a", 0, 40}, {"b", 40, 50}, {"r", 90, 10}},
			wantChain: []string{"A", "B", "root"},
		},
		{
			name: "grandchildren",
			spans: []Span{
				span("t", "r", "", "root", 0, 100),
				span("t", "a", "r", "A", 0, 100),
				span("t", "a1", "a", "A1", 20, 50),
				span("t", "a2", "a", "A2", 50, 70),
			},
			wantRoot: "root", wantDur: 100,
			wantSegs:  []seg{{"a", 0, 20}, {"a1", 20, 30}, {"a2", 50, 20}, {"a", 70, 30}},
			wantChain: []string{"A", "A1", "A2"},
		},
		{
			name: "a child outliving its parent is clipped to it",
			spans: []Span{
				span("t", "r", "", "root", 0, 50),
				span("t", "a", "r", "A", 10, 80),
			},
			wantRoot: "root", wantDur: 50,
			wantSegs:  []seg{{"r", 0, 10}, {"a", 10, 40}},
			wantChain: []string{"root", "A"},
		},
		{
			name: "a child starting before its parent is clipped to it",
			spans: []Span{
				span("t", "r", "", "root", 10, 50),
				span("t", "a", "r", "A", 0, 30),
			},
			wantRoot: "root", wantDur: 40,
			wantSegs:  []seg{{"a", 0, 20}, {"r", 20, 20}},
			wantChain: []string{"A", "root"},
		},
		{
			name: "of several parentless spans the root is the one ending last",
			spans: []Span{
				span("t", "x", "gone", "orphan", 0, 40),
				span("t", "y", "remote", "server", 5, 60),
				span("t", "z", "y", "work", 10, 20),
			},
			wantRoot: "server", wantDur: 55,
			wantSegs:  []seg{{"y", 0, 5}, {"z", 5, 10}, {"y", 15, 40}},
			wantChain: []string{"server", "work"},
		},
		{
			name: "a zero-length child adds nothing and the parent's time merges",
			spans: []Span{
				span("t", "r", "", "root", 0, 10),
				span("t", "a", "r", "A", 5, 5),
			},
			wantRoot: "root", wantDur: 10,
			wantSegs:  []seg{{"r", 0, 10}},
			wantChain: []string{"root"},
		},
		{
			name: "equal ends: the later start wins",
			spans: []Span{
				span("t", "r", "", "root", 0, 10),
				span("t", "a", "r", "A", 0, 10),
				span("t", "b", "r", "B", 4, 10),
			},
			wantRoot: "root", wantDur: 10,
			wantSegs:  []seg{{"a", 0, 4}, {"b", 4, 6}},
			wantChain: []string{"A", "B"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := criticalPath(groupTraces(tt.spans)[0])
			if p == nil {
				t.Fatal("no path")
			}
			if p.Root != tt.wantRoot || p.Duration != msDur(tt.wantDur) {
				t.Errorf("root %q %v, want %q %vms", p.Root, p.Duration.Std(), tt.wantRoot, tt.wantDur)
			}
			var got []seg
			for _, s := range p.Segments {
				got = append(got, seg{s.SpanID, float64(s.Offset.Std().Microseconds()) / 1000, float64(s.Duration.Std().Microseconds()) / 1000})
			}
			if !slices.Equal(got, tt.wantSegs) {
				t.Errorf("segments = %v, want %v", got, tt.wantSegs)
			}
			if !slices.Equal(p.Chain, tt.wantChain) {
				t.Errorf("chain = %q, want %q", p.Chain, tt.wantChain)
			}
			var sum Dur
			for _, s := range p.Segments {
				sum += s.Duration
			}
			if sum != p.Duration {
				t.Errorf("segments add up to %v, not the root's %v", sum.Std(), p.Duration.Std())
			}
		})
	}
}

func TestCriticalPathOfParentCycleIsNil(t *testing.T) {
	tr := groupTraces([]Span{span("t", "a", "b", "A", 0, 1), span("t", "b", "a", "B", 0, 1)})[0]
	if p := criticalPath(tr); p != nil {
		t.Errorf("path = %+v, want none: every span has a parent", p)
	}
	// A self-parented span under a real root is never reached.
	tr = groupTraces([]Span{span("t", "r", "", "R", 0, 4), span("t", "s", "s", "S", 1, 2)})[0]
	if p := criticalPath(tr); p == nil || !slices.Equal(p.Chain, []string{"R"}) {
		t.Errorf("path = %+v, want R alone", p)
	}
}
