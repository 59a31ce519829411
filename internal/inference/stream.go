package inference

import (
	"context"
	"errors"
	"fmt"

	"github.com/lumenllm/lumen/internal/scheduler"
)

// ErrNoResult: a stream closed without its final event, which breaks the
// scheduler's contract (a server error, never the client's).
var ErrNoResult = errors.New("stream ended without a result")

// Recv returns the stream's next event. The last event has Done set and a
// Result; a failed request's last event comes back as its error (Result
// still set on the event), and so does the client leaving (ctx's cause).
// Both transports read streams through Recv or Settle, so the end of a
// stream means the same on every API.
func (st *Stream) Recv(ctx context.Context) (scheduler.Event, error) {
	select {
	case <-ctx.Done():
		return scheduler.Event{}, fmt.Errorf("client went away: %w", context.Cause(ctx))
	case ev, ok := <-st.Events:
		return Settle(ev, ok)
	}
}

// Settle applies Recv's end-of-stream rule to an event received from a
// stream's channel (ok false: the channel was closed), for readers that
// select over several streams.
func Settle(ev scheduler.Event, ok bool) (scheduler.Event, error) {
	switch {
	case !ok, ev.Done && ev.Err == nil && ev.Result == nil:
		return ev, ErrNoResult
	case ev.Done && ev.Err != nil:
		return ev, ev.Err
	}
	return ev, nil
}
