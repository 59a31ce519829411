package loadgen

import (
	"context"
	"sync"
	"time"
)

// fakeClock is a Clock whose time moves only when told to: Sleep moves
// it at once, and fakeTarget moves it to stand for server work.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.Advance(max(d, 0))
	return nil
}

// fakeTarget answers every request with MaxTokens one-character chunks.
// It records what it was sent, how many requests were in flight at most,
// and how streams the runner stopped ended.
type fakeTarget struct {
	// clock, when set, advances by prefill before the first chunk and by
	// perToken before each later one.
	clock             *fakeClock
	prefill, perToken time.Duration
	// before, when set, runs as request number k (in start order, from
	// 0) starts; an error ends the request with it.
	before func(ctx context.Context, f *fakeTarget, k int) error

	mu          sync.Mutex
	started     int
	inFlight    int
	maxInFlight int
	startedCh   chan struct{} // closed and replaced on every start
	reqs        []Request
	// stopped streams were ended by onText's error; stoppedLive of them
	// still had a live context then, which would leave the server's
	// slot busy.
	stopped, stoppedLive int
}

func (f *fakeTarget) Name() string { return "fake" }

func (f *fakeTarget) Stream(ctx context.Context, req Request, onText func(string) error) (Result, error) {
	f.mu.Lock()
	k := f.started
	f.started++
	f.inFlight++
	f.maxInFlight = max(f.maxInFlight, f.inFlight)
	f.reqs = append(f.reqs, req)
	if f.startedCh != nil {
		close(f.startedCh)
	}
	f.startedCh = make(chan struct{})
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inFlight--
		f.mu.Unlock()
	}()

	if f.before != nil {
		if err := f.before(ctx, f, k); err != nil {
			return Result{}, err
		}
	}
	for i := range req.MaxTokens {
		if f.clock != nil && i == 0 {
			f.clock.Advance(f.prefill)
		} else if f.clock != nil {
			f.clock.Advance(f.perToken)
		}
		if err := onText("x"); err != nil {
			f.mu.Lock()
			f.stopped++
			if ctx.Err() == nil {
				f.stoppedLive++
			}
			f.mu.Unlock()
			return Result{}, err
		}
	}
	return Result{
		FinishReason:     "length",
		PromptTokens:     len(req.Prompt) / 2,
		CompletionTokens: req.MaxTokens,
		QueueMS:          1,
		PrefillMS:        2,
	}, nil
}

// waitStarted waits until n requests have started or ctx ends.
func (f *fakeTarget) waitStarted(ctx context.Context, n int) error {
	for {
		f.mu.Lock()
		if f.started >= n {
			f.mu.Unlock()
			return nil
		}
		if f.startedCh == nil {
			f.startedCh = make(chan struct{})
		}
		ch := f.startedCh
		f.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// fakeCounter is a fakeTarget that counts a token per charsPerToken
// characters.
type fakeCounter struct {
	*fakeTarget
	charsPerToken int
}

func (f fakeCounter) CountTokens(_ context.Context, _, text string) (int, error) {
	return len(text) / f.charsPerToken, nil
}
