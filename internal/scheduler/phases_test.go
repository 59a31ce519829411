package scheduler

import (
	"context"
	"testing"
	"time"
)

// stepLog hands each step record to the test.
type stepLog chan StepInfo

func (l stepLog) Step(si StepInfo)                 { l <- si }
func (l stepLog) Finished(context.Context, Result) {}

// A step's phases partition its time: building the batch and the
// engine's decode make up Start..End, and the decode phase is the time
// the engine spent (here held for at least 20 ms). The first step after
// an idle wait has no gap.
func TestStepPhases(t *testing.T) {
	eng := newFakeEngine(1, 256, 64)
	eng.gate = make(chan struct{})
	steps := make(stepLog, 16)
	s := start(t, eng, Config{Observer: steps})
	ch, err := s.Submit(context.Background(), Request{Prompt: tokens("phases"), MaxTokens: 3})
	if err != nil {
		t.Fatal(err)
	}
	const hold = 20 * time.Millisecond
	for range 3 {
		time.Sleep(hold) // the engine "works" this long: a duration to measure, not a synchronisation
		eng.gate <- struct{}{}
	}
	if _, _, err := collect(t, ch); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		si := <-steps
		if si.DecodeStart.Before(si.Start) || si.End.Before(si.DecodeStart) {
			t.Errorf("step %d: Start %v, DecodeStart %v, End %v out of order", i, si.Start, si.DecodeStart, si.End)
		}
		if si.DecodeStart.Sub(si.Start)+si.End.Sub(si.DecodeStart) != si.End.Sub(si.Start) {
			t.Errorf("step %d: build + decode != the step", i)
		}
		if d := si.End.Sub(si.DecodeStart); d < hold/2 {
			t.Errorf("step %d: decode phase %v, the engine held it ≥ %v", i, d, hold)
		}
		if si.Sample < 0 || si.Emit < 0 || si.Gap < 0 {
			t.Errorf("step %d: negative phase: sample %v emit %v gap %v", i, si.Sample, si.Emit, si.Gap)
		}
		if i == 0 && si.Gap != 0 {
			t.Errorf("first step after idle: gap %v, want 0", si.Gap)
		}
	}
}
