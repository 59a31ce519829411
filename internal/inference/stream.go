package inference

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lumenllm/lumen/internal/scheduler"
)

// ErrNoResult: a stream closed without its final event, which breaks the
// scheduler's contract (a server error, never the client's).
var ErrNoResult = errors.New("stream ended without a result")

// ErrStreamClosed is the cause a stream's request is cancelled with when
// the transport closes it before its end.
var ErrStreamClosed = errors.New("stream closed before its end")

// CloseWait bounds how long Close waits for a cancelled request's final
// event: the scheduler drops a cancelled request before its next step, so
// only an engine step that never returns makes Close give up.
const CloseWait = 30 * time.Second

// Close ends the stream. A request still running is cancelled (cause
// ErrStreamClosed), and Close waits, at most CloseWait, for its final
// event: the scheduler reports a request (its spans end, its metrics
// count) before that event, so a transport that defers Close after
// Generate ends its own span after the request's — children end within
// their parents even when the client leaves. A stream read to its end
// closes at once. Close is safe to call more than once.
func (st *Stream) Close() {
	if st.cancel == nil {
		return
	}
	st.cancel(ErrStreamClosed)
	timer := time.NewTimer(CloseWait)
	defer timer.Stop()
	for {
		select {
		case _, ok := <-st.Events:
			if !ok {
				return
			}
		case <-timer.C:
			return
		}
	}
}

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
