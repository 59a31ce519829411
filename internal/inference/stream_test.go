package inference

import (
	"context"
	"errors"
	"testing"

	"github.com/lumenllm/lumen/internal/scheduler"
)

// TestRecv: the one end-of-stream rule — text events pass, the last
// event with a result ends the stream, a failed one is its error, a
// stream closed without a result is ErrNoResult, a client gone is ctx's.
func TestRecv(t *testing.T) {
	boom := errors.New("boom")
	res := &scheduler.Result{Finish: scheduler.FinishStop}
	for _, tt := range []struct {
		name   string
		events []scheduler.Event
		closed bool
		want   error
		done   bool
	}{
		{"text", []scheduler.Event{{Text: "a"}}, false, nil, false},
		{"done", []scheduler.Event{{Done: true, Result: res}}, false, nil, true},
		{"failed", []scheduler.Event{{Done: true, Result: res, Err: boom}}, false, boom, true},
		{"done without a result", []scheduler.Event{{Done: true}}, false, ErrNoResult, true},
		{"closed", nil, true, ErrNoResult, false},
	} {
		ch := make(chan scheduler.Event, len(tt.events))
		for _, ev := range tt.events {
			ch <- ev
		}
		if tt.closed {
			close(ch)
		}
		st := &Stream{Events: ch}
		ev, err := st.Recv(context.Background())
		if !errors.Is(err, tt.want) || ev.Done != tt.done {
			t.Errorf("%s: Recv = %+v, %v; want done %v, %v", tt.name, ev, err, tt.done, tt.want)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := (&Stream{Events: make(chan scheduler.Event)}).Recv(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Recv after the client left = %v, want context.Canceled", err)
	}
}
