package scheduler

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/lumenllm/lumen/internal/reqerr"
)

// start runs a scheduler over eng until the test ends.
func start(t *testing.T, eng Engine, cfg Config) *Scheduler {
	t.Helper()
	s, err := New(eng, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return s
}

// collect reads a stream to its end.
func collect(t *testing.T, ch <-chan Event) (string, Result, error) {
	t.Helper()
	var sb strings.Builder
	for ev := range ch {
		sb.WriteString(ev.Text)
		if ev.Done {
			return sb.String(), *ev.Result, ev.Err
		}
	}
	t.Fatal("stream closed without a Done event")
	return "", Result{}, nil
}

func generate(t *testing.T, s *Scheduler, ctx context.Context, r Request) (string, Result, error) {
	t.Helper()
	ch, err := s.Submit(ctx, r)
	if err != nil {
		t.Fatalf("Submit: %v", err)
	}
	return collect(t, ch)
}

func TestSingleRequest(t *testing.T) {
	s := start(t, newFakeEngine(2, 256, 64), Config{})
	text, res, err := generate(t, s, context.Background(), Request{ID: "a", Prompt: tokens("hello"), MaxTokens: 10})
	if err != nil {
		t.Fatal(err)
	}
	if want := expectText(tokens("hello"), 10); text != want {
		t.Errorf("text = %q, want %q", text, want)
	}
	if res.Finish != FinishLength || res.PromptTokens != 5 || res.CompletionTokens != 10 || res.ID != "a" {
		t.Errorf("result = %+v, want length, 5 prompt, 10 completion, id a", res)
	}
}

// Concurrent requests give exactly the text each gives alone.
func TestConcurrentRequestsMatchAlone(t *testing.T) {
	eng := newFakeEngine(4, 1024, 64)
	s := start(t, eng, Config{PrefillChunk: 8})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			prompt := tokens(strings.Repeat(fmt.Sprint(i), 3+i*5))
			ch, err := s.Submit(context.Background(), Request{Prompt: prompt, MaxTokens: 20})
			if err != nil {
				errs <- err
				return
			}
			var sb strings.Builder
			for ev := range ch {
				sb.WriteString(ev.Text)
				if ev.Err != nil {
					errs <- ev.Err
				}
			}
			if want := expectText(prompt, 20); sb.String() != want {
				errs <- fmt.Errorf("request %d: %q, want %q", i, sb.String(), want)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	maxBatch := 0
	for _, st := range eng.steps {
		maxBatch = max(maxBatch, len(st))
	}
	if maxBatch < 2 {
		t.Errorf("largest batch had %d tokens: requests were never batched", maxBatch)
	}
}

func TestFinishReasons(t *testing.T) {
	tests := []struct {
		name       string
		eogAfter   int
		req        Request
		wantFinish FinishReason
		wantTokens int
	}{
		{"max tokens", 0, Request{Prompt: tokens("abc"), MaxTokens: 4}, FinishLength, 4},
		{"end of generation", 6, Request{Prompt: tokens("abc"), MaxTokens: 10}, FinishStop, 3},
		// The last token is sampled from the last cell and never fed back.
		{"context full", 0, Request{Prompt: tokens("abc"), MaxTokens: 64}, FinishLength, 64 - 3 + 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eng := newFakeEngine(1, 64, 64)
			eng.eogAfter = tt.eogAfter
			s := start(t, eng, Config{})
			_, res, err := generate(t, s, context.Background(), tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if res.Finish != tt.wantFinish || res.CompletionTokens != tt.wantTokens {
				t.Errorf("finish %s after %d tokens, want %s after %d", res.Finish, res.CompletionTokens, tt.wantFinish, tt.wantTokens)
			}
		})
	}
}

// Stop strings end generation and are never emitted, though every token
// here is a single byte, so each stop string spans several tokens.
func TestStopStringsSplitAcrossTokens(t *testing.T) {
	prompt := tokens("stop test")
	full := expectText(prompt, 40)
	stop := full[10:13]
	want := full[:strings.Index(full, stop)]
	s := start(t, newFakeEngine(1, 256, 64), Config{})
	ch, err := s.Submit(context.Background(), Request{Prompt: prompt, MaxTokens: 40, Stop: []string{"#never#", stop}})
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	var res Result
	for ev := range ch {
		sb.WriteString(ev.Text)
		if strings.Contains(sb.String(), stop) {
			t.Fatalf("stop string %q emitted in %q", stop, sb.String())
		}
		if ev.Done {
			res = *ev.Result
		}
	}
	if sb.String() != want || res.Finish != FinishStop {
		t.Errorf("text %q finish %s, want %q stop", sb.String(), res.Finish, want)
	}
}

// KeepText keeps the start of the streamed text for the result; none by
// default.
func TestKeepText(t *testing.T) {
	prompt := tokens("keep")
	full := expectText(prompt, 20)
	s := start(t, newFakeEngine(1, 256, 64), Config{})
	for _, tt := range []struct {
		keep      int
		want      string
		truncated bool
	}{
		{0, "", false},
		{5, full[:5], true},
		{len(full), full, false},
		{len(full) + 100, full, false},
	} {
		text, res, err := generate(t, s, context.Background(), Request{Prompt: prompt, MaxTokens: 20, KeepText: tt.keep})
		if err != nil {
			t.Fatal(err)
		}
		if text != full || res.Text != tt.want || res.TextTruncated != tt.truncated {
			t.Errorf("KeepText %d: streamed %q, kept %q (truncated %v); want %q kept %q (truncated %v)",
				tt.keep, text, res.Text, res.TextTruncated, full, tt.want, tt.truncated)
		}
	}
}

func TestKeptTextCutsAtCharacters(t *testing.T) {
	var k keptText
	k.add("ab", 4)
	k.add("é€", 4) // "é" fits in the 2 bytes left; "€" does not
	k.add("c", 4)  // nothing after the cut
	if got := string(k.buf); got != "abé" || !k.truncated {
		t.Errorf("kept %q (truncated %v), want %q truncated", got, k.truncated, "abé")
	}
	k = keptText{}
	k.add("a€", 3) // "€" is 3 bytes: only "a"
	if got := string(k.buf); got != "a" || !k.truncated {
		t.Errorf("kept %q (truncated %v), want %q truncated", got, k.truncated, "a")
	}
}

func TestStopMatcherHoldsPrefixes(t *testing.T) {
	m := stopMatcher{stops: []string{"</end>"}}
	steps := []struct{ in, out string }{{"abc<", "abc"}, {"/e", ""}, {"x", "</ex"}, {"</en", ""}, {"d>tail", ""}}
	for i, st := range steps {
		out, stopped := m.push(st.in)
		if out != st.out || stopped != (i == len(steps)-1) {
			t.Errorf("push(%q) = %q, %v; want %q, %v", st.in, out, stopped, st.out, i == len(steps)-1)
		}
	}
}

func TestValidate(t *testing.T) {
	s, err := New(newFakeEngine(2, 256, 64), Config{MaxStops: 2})
	if err != nil {
		t.Fatal(err)
	}
	ok := Request{Prompt: tokens("hi"), MaxTokens: 4}
	tests := []struct {
		name  string
		edit  func(*Request)
		field string
	}{
		{"empty prompt", func(r *Request) { r.Prompt = nil }, "prompt"},
		{"prompt over context", func(r *Request) { r.Prompt = make([]int32, 128) }, "prompt"},
		{"zero max tokens", func(r *Request) { r.MaxTokens = 0 }, "max_tokens"},
		{"negative max tokens", func(r *Request) { r.MaxTokens = -1 }, "max_tokens"},
		{"max tokens over context", func(r *Request) { r.MaxTokens = 129 }, "max_tokens"},
		{"too many stops", func(r *Request) { r.Stop = []string{"a", "b", "c"} }, "stop"},
		{"empty stop", func(r *Request) { r.Stop = []string{""} }, "stop"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ok
			tt.edit(&r)
			_, err := s.Submit(context.Background(), r)
			var ie *reqerr.InvalidError
			if !errors.As(err, &ie) || !errors.Is(err, reqerr.ErrInvalid) || ie.Field != tt.field {
				t.Errorf("err = %v, want reqerr.InvalidError on %s", err, tt.field)
			}
		})
	}
}

// A full queue answers at once with reqerr.ErrQueueFull.
func TestQueueFull(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		eng := newFakeEngine(1, 256, 64)
		eng.gate = make(chan struct{})
		s := start(t, eng, Config{MaxQueue: 2})
		first, err := s.Submit(context.Background(), Request{Prompt: tokens("a"), MaxTokens: 2})
		if err != nil {
			t.Fatal(err)
		}
		synctest.Wait() // the loop admitted it and waits in Decode
		var queued []<-chan Event
		for range 2 {
			ch, err := s.Submit(context.Background(), Request{Prompt: tokens("b"), MaxTokens: 1})
			if err != nil {
				t.Fatalf("queued submit: %v", err)
			}
			queued = append(queued, ch)
		}
		if _, err := s.Submit(context.Background(), Request{Prompt: tokens("c"), MaxTokens: 1}); !errors.Is(err, reqerr.ErrQueueFull) {
			t.Fatalf("third waiting submit: err = %v, want reqerr.ErrQueueFull", err)
		}
		if st := s.Stats(); st.Queued != 2 || st.Active != 1 {
			t.Errorf("stats = %+v, want 2 queued, 1 active", st)
		}
		close(eng.gate) // let everything run
		for _, ch := range append(queued, first) {
			if _, _, err := collect(t, ch); err != nil {
				t.Error(err)
			}
		}
	})
}

// A burst within capacity is served on an idle server: requests that will
// take a free slot do not count against the queue bound, so slots +
// MaxQueue simultaneous requests are all accepted, and one more is not.
func TestBurstWithinCapacity(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		eng := newFakeEngine(4, 1024, 64)
		eng.gate = make(chan struct{})
		s := start(t, eng, Config{MaxQueue: 1})
		var accepted []<-chan Event
		// All at once: the loop has admitted none of them yet.
		for i := range 5 {
			ch, err := s.Submit(context.Background(), Request{Prompt: tokens(fmt.Sprint("p", i)), MaxTokens: 2})
			if err != nil {
				t.Fatalf("request %d of 4 slots + 1 queue place: %v", i+1, err)
			}
			accepted = append(accepted, ch)
		}
		if _, err := s.Submit(context.Background(), Request{Prompt: tokens("x"), MaxTokens: 2}); !errors.Is(err, reqerr.ErrQueueFull) {
			t.Fatalf("sixth request: err = %v, want reqerr.ErrQueueFull", err)
		}
		synctest.Wait() // four admitted, decoding behind the gate; one waits
		if st := s.Stats(); st.Active != 4 || st.Queued != 1 {
			t.Errorf("stats %+v, want 4 active and 1 queued", st)
		}
		if _, err := s.Submit(context.Background(), Request{Prompt: tokens("y"), MaxTokens: 2}); !errors.Is(err, reqerr.ErrQueueFull) {
			t.Errorf("with the slots busy and the queue full: err = %v, want reqerr.ErrQueueFull", err)
		}
		close(eng.gate)
		for _, ch := range accepted {
			if _, _, err := collect(t, ch); err != nil {
				t.Error(err)
			}
		}
	})
}

// Cancelled requests leave the batch and free their cells, whether they
// were waiting, prefilling or decoding; afterwards the scheduler serves.
func TestCancellationFreesSlots(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		eng := newFakeEngine(2, 512, 16)
		eng.gate = make(chan struct{})
		s := start(t, eng, Config{PrefillChunk: 8, NoPrefixCache: false})
		step := func() { eng.gate <- struct{}{}; synctest.Wait() }
		for i := range 50 {
			ctx, cancel := context.WithCancel(context.Background())
			// A long prompt takes several steps to prefill.
			ch, err := s.Submit(ctx, Request{Prompt: tokens(strings.Repeat("p", 40+i)), MaxTokens: 100})
			if err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
			steps := 1 + i%8 // i%8 < 5: mid-prefill; otherwise mid-decode
			for range steps {
				step()
			}
			cancel()
			// The loop is parked in Decode; one more step lets it notice.
			step()
			_, res, err := collect(t, ch)
			if !errors.Is(err, context.Canceled) || res.Finish != FinishCancelled {
				t.Fatalf("cancelled request %d: finish %s err %v", i, res.Finish, err)
			}
		}
		synctest.Wait()
		if used := eng.KVUsed(); used != 0 {
			t.Errorf("KV cells in use after 50 cancellations: %d, want 0", used)
		}
		if st := s.Stats(); st.Active != 0 || st.Queued != 0 || st.KVUsed != 0 {
			t.Errorf("stats after cancellations = %+v, want idle and empty", st)
		}
		close(eng.gate)
		text, _, err := generate(t, s, context.Background(), Request{Prompt: tokens("fresh"), MaxTokens: 5})
		if err != nil || text != expectText(tokens("fresh"), 5) {
			t.Errorf("after cancellations: %q, %v", text, err)
		}
	})
}

// A waiting request whose caller leaves never takes a slot.
func TestCancelWhileQueued(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		eng := newFakeEngine(1, 256, 64)
		eng.gate = make(chan struct{})
		s := start(t, eng, Config{})
		first, _ := s.Submit(context.Background(), Request{Prompt: tokens("a"), MaxTokens: 3})
		synctest.Wait()
		ctx, cancel := context.WithCancel(context.Background())
		waiting, _ := s.Submit(ctx, Request{Prompt: tokens("b"), MaxTokens: 3})
		cancel()
		close(eng.gate)
		if _, res, err := collect(t, waiting); !errors.Is(err, context.Canceled) || res.Slot != -1 {
			t.Errorf("queued cancel: slot %d err %v, want -1 and Canceled", res.Slot, err)
		}
		if _, _, err := collect(t, first); err != nil {
			t.Error(err)
		}
	})
}

// A long prompt is prefilled in chunks while a running sequence keeps
// decoding a token every step.
func TestPrefillChunksDoNotStallDecode(t *testing.T) {
	eng := newFakeEngine(2, 2048, 64)
	eng.gate = make(chan struct{})
	obs := &recorder{}
	s := start(t, eng, Config{PrefillChunk: 32, Observer: obs})
	short, _ := s.Submit(context.Background(), Request{ID: "short", Prompt: tokens("go"), MaxTokens: 30})
	eng.gate <- struct{}{} // short's prefill
	long, _ := s.Submit(context.Background(), Request{ID: "long", Prompt: tokens(strings.Repeat("x", 300)), MaxTokens: 2})
	close(eng.gate)
	_, rs, err := collect(t, short)
	if err != nil {
		t.Fatal(err)
	}
	_, rl, err := collect(t, long)
	if err != nil {
		t.Fatal(err)
	}
	if len(rl.Timings.PrefillChunks) < 300/64 {
		t.Errorf("long prompt ran in %d chunks, want it split", len(rl.Timings.PrefillChunks))
	}
	for _, c := range rl.Timings.PrefillChunks {
		if c.Tokens > 32 {
			t.Errorf("chunk of %d tokens exceeds PrefillChunk 32", c.Tokens)
		}
	}
	// Every step while both were active carried short's decode token.
	for _, si := range obs.stepsSoFar() {
		hasLong, hasShort := false, false
		for _, sq := range si.Seqs {
			hasLong = hasLong || (sq.ID == "long" && sq.PrefillTokens > 0)
			hasShort = hasShort || (sq.ID == "short" && sq.Decode)
		}
		if hasLong && rs.Timings.Finished.After(si.End) && !hasShort {
			t.Errorf("a prefill step of the long prompt left the running sequence out: %+v", si)
		}
	}
	if rs.Timings.MeanBatch() <= 1 {
		t.Errorf("short's mean batch %.2f: it never shared a step", rs.Timings.MeanBatch())
	}
}

type recorder struct {
	mu    sync.Mutex
	steps []StepInfo
	done  []Result
}

func (r *recorder) Step(si StepInfo) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.steps = append(r.steps, si)
}

func (r *recorder) stepsSoFar() []StepInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]StepInfo(nil), r.steps...)
}

func (r *recorder) Finished(_ context.Context, res Result) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.done = append(r.done, res)
}

// A prompt sharing a prefix with what a free slot holds reuses those
// cells, and produces the same text as without the cache.
func TestPrefixReuse(t *testing.T) {
	eng := newFakeEngine(2, 512, 64)
	s := start(t, eng, Config{})
	base := "You are a helpful assistant. Question: "
	if _, _, err := generate(t, s, context.Background(), Request{Prompt: tokens(base + "one?"), MaxTokens: 4}); err != nil {
		t.Fatal(err)
	}
	prompt := tokens(base + "two?")
	text, res, err := generate(t, s, context.Background(), Request{Prompt: prompt, MaxTokens: 6})
	if err != nil {
		t.Fatal(err)
	}
	if res.CachedTokens != len(base) {
		t.Errorf("cached tokens = %d, want %d", res.CachedTokens, len(base))
	}
	if want := expectText(prompt, 6); text != want {
		t.Errorf("with prefix reuse: %q, want %q", text, want)
	}
	// The same prompt again reuses all but the last prompt token.
	_, res, _ = generate(t, s, context.Background(), Request{Prompt: prompt, MaxTokens: 6})
	if res.CachedTokens != len(prompt)-1 {
		t.Errorf("identical prompt: cached %d, want %d", res.CachedTokens, len(prompt)-1)
	}
}

func TestTimingsAddUp(t *testing.T) {
	s := start(t, newFakeEngine(1, 256, 64), Config{})
	_, res, err := generate(t, s, context.Background(), Request{Prompt: tokens("timing"), MaxTokens: 5})
	if err != nil {
		t.Fatal(err)
	}
	tm := res.Timings
	if tm.Queue()+tm.Prefill() != tm.TTFT() {
		t.Errorf("queue %v + prefill %v != ttft %v", tm.Queue(), tm.Prefill(), tm.TTFT())
	}
	if tm.Enqueued.After(tm.Admitted) || tm.Admitted.After(tm.FirstToken) || tm.FirstToken.After(tm.Finished) {
		t.Errorf("timings out of order: %+v", tm)
	}
	if tm.DecodeSteps != 4 {
		t.Errorf("decode steps = %d, want 4 (first token comes from prefill)", tm.DecodeSteps)
	}
}

func TestEngineFailureFailsBatch(t *testing.T) {
	eng := newFakeEngine(1, 256, 64)
	eng.failDecode = true
	s := start(t, eng, Config{})
	_, res, err := generate(t, s, context.Background(), Request{Prompt: tokens("x"), MaxTokens: 3})
	if !errors.Is(err, reqerr.ErrEngine) || res.Finish != FinishError {
		t.Errorf("finish %s err %v, want error/reqerr.ErrEngine", res.Finish, err)
	}
	if text, _, err := generate(t, s, context.Background(), Request{Prompt: tokens("x"), MaxTokens: 3}); err != nil || text != expectText(tokens("x"), 3) {
		t.Errorf("after a failed step: %q %v", text, err)
	}
}

// Drain lets in-flight requests finish and refuses new ones; when its
// deadline passes, what remains is cancelled with reqerr.ErrShutdown.
func TestDrain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		eng := newFakeEngine(1, 256, 64)
		eng.gate = make(chan struct{})
		s, _ := New(eng, Config{})
		runDone := make(chan error, 1)
		go func() { runDone <- s.Run(context.Background()) }()
		inflight, _ := s.Submit(context.Background(), Request{Prompt: tokens("a"), MaxTokens: 3})
		queued, _ := s.Submit(context.Background(), Request{Prompt: tokens("b"), MaxTokens: 3})
		synctest.Wait()
		drainDone := make(chan error, 1)
		go func() { drainDone <- s.Drain(context.Background()) }()
		synctest.Wait()
		if _, err := s.Submit(context.Background(), Request{Prompt: tokens("c"), MaxTokens: 1}); !errors.Is(err, reqerr.ErrDraining) {
			t.Errorf("submit while draining: %v, want reqerr.ErrDraining", err)
		}
		close(eng.gate)
		for _, ch := range []<-chan Event{inflight, queued} {
			if _, res, err := collect(t, ch); err != nil || res.Finish != FinishLength {
				t.Errorf("drained request: finish %s err %v", res.Finish, err)
			}
		}
		if err := <-drainDone; err != nil {
			t.Errorf("Drain: %v", err)
		}
		if err := <-runDone; err != nil {
			t.Errorf("Run after drain: %v", err)
		}
	})
}

func TestDrainTimeoutCancels(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		eng := newFakeEngine(1, 256, 64)
		eng.gate = make(chan struct{})
		s, _ := New(eng, Config{})
		go s.Run(context.Background())
		ch, _ := s.Submit(context.Background(), Request{Prompt: tokens("slow"), MaxTokens: 50})
		synctest.Wait()
		// Release steps slowly so the deadline passes mid-generation.
		pacer := make(chan struct{})
		go func() {
			defer close(pacer)
			for {
				time.Sleep(100 * time.Millisecond)
				select {
				case eng.gate <- struct{}{}:
				case <-s.done:
					return
				}
			}
		}()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := s.Drain(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Drain = %v, want DeadlineExceeded", err)
		}
		text, res, err := collect(t, ch)
		if !errors.Is(err, reqerr.ErrShutdown) || res.Finish != FinishCancelled || text == "" {
			t.Errorf("after drain timeout: text %q finish %s err %v", text, res.Finish, err)
		}
		<-pacer
	})
}
