package inference

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

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

// TestCloseWaitsForTheEnd: Close cancels a running request and returns
// only once the scheduler has reported it (its final event), so the
// transport's span cannot end before the request's.
func TestCloseWaitsForTheEnd(t *testing.T) {
	ctx, cancel := context.WithCancelCause(context.Background())
	ch := make(chan scheduler.Event, 2)
	var reported atomic.Bool
	go func() {
		// The scheduler: a request runs until its context ends, then is
		// reported (spans end) and sends its final event.
		<-ctx.Done()
		if cause := context.Cause(ctx); !errors.Is(cause, ErrStreamClosed) {
			t.Errorf("request cancelled with %v, want ErrStreamClosed", cause)
		}
		time.Sleep(20 * time.Millisecond) // the rest of an engine step
		reported.Store(true)
		ch <- scheduler.Event{Done: true, Result: &scheduler.Result{Finish: scheduler.FinishCancelled}, Err: ctx.Err()}
		close(ch)
	}()
	st := &Stream{Events: ch, cancel: cancel}
	st.Close()
	if !reported.Load() {
		t.Fatal("Close returned before the request was reported")
	}
	st.Close() // a second Close returns at once
}

// TestCloseAfterTheEnd: a stream read to its end closes without waiting
// and releases its context.
func TestCloseAfterTheEnd(t *testing.T) {
	ctx, cancel := context.WithCancelCause(context.Background())
	ch := make(chan scheduler.Event, 1)
	ch <- scheduler.Event{Done: true, Result: &scheduler.Result{Finish: scheduler.FinishStop}}
	close(ch)
	st := &Stream{Events: ch, cancel: cancel}
	if _, err := st.Recv(context.Background()); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	st.Close()
	if d := time.Since(start); d > time.Second {
		t.Errorf("Close of a finished stream took %v", d)
	}
	if ctx.Err() == nil {
		t.Error("Close left the stream's context running")
	}
}
