package scheduler

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/lumenllm/lumen/internal/detok"
	"github.com/lumenllm/lumen/internal/prefixcache"
	"github.com/lumenllm/lumen/internal/reqerr"
)

// Config tunes a Scheduler. Zero fields take the defaults noted.
type Config struct {
	// MaxQueue bounds the requests waiting for a slot (default 64):
	// requests that will take a free slot at the next step do not count. A
	// Submit beyond it fails at once with reqerr.ErrQueueFull.
	MaxQueue int
	// PrefillChunk caps the prompt tokens one sequence adds to a step
	// (default 256), so a long prompt never stalls running sequences.
	PrefillChunk int
	// MaxStops caps the stop strings of a request (default 8).
	MaxStops int
	// NoPrefixCache frees a finished sequence's cells instead of keeping
	// them for a later request with the same prefix.
	NoPrefixCache bool
	// HostCacheBytes, when positive, keeps the cells a free slot held in
	// host memory, up to this many bytes (least recently used out), when
	// the slot is given to a prompt that does not extend them, so a later
	// prompt starting the same way restores them instead of computing.
	HostCacheBytes int64
	// Embedder, when set, serves embeddings requests (Request.Embed) on
	// the scheduler's goroutine, between steps; without it they are
	// refused.
	Embedder Embedder
	// Observer receives step and request records (default: none).
	Observer Observer
	// Now is the clock (default time.Now); tests may replace it.
	Now func() time.Time
}

// Observer receives the scheduler's records as plain data. It is called
// on the scheduler goroutine and must not block.
type Observer interface {
	// Step is called after every decode step.
	Step(StepInfo)
	// Finished is called once per request with its final result; ctx is
	// the request's context.
	Finished(ctx context.Context, r Result)
}

// StepInfo describes one engine step.
type StepInfo struct {
	Start, End time.Time
	// The step's phases: building the batch (Start to DecodeStart), the
	// engine's decode (DecodeStart to End), then picking each sequence's
	// token (Sample) and turning tokens into text, stop checks and events
	// (Emit), both after End. Gap is the loop's own work since the
	// previous step's tokens went out (recording that step, admission,
	// cancellations), zero after the loop waited idle for work.
	DecodeStart       time.Time
	Sample, Emit, Gap time.Duration
	PrefillTokens     int
	DecodeTokens      int
	KVUsed            int
	Device            string
	Seqs              []StepSeq
	Err               error
}

// StepSeq is one request's part in a step.
type StepSeq struct {
	ID            string
	Ctx           context.Context
	Slot          int
	PrefillTokens int
	Decode        bool
}

// Stats is a snapshot of the scheduler's load.
type Stats struct {
	Queued, Active, Slots int
	// KVUsed counts cache cells in use, CachedKV those of them held by
	// finished sequences for prefix reuse.
	KVUsed, CachedKV int
	KVSize           int
	// HostCacheBytes and HostCacheEntries are what the host-memory
	// prefix cache holds.
	HostCacheBytes   int64
	HostCacheEntries int
}

type nopObserver struct{}

func (nopObserver) Step(StepInfo)                    {}
func (nopObserver) Finished(context.Context, Result) {}

// Scheduler runs continuous batching over an Engine.
type Scheduler struct {
	eng     Engine
	cfg     Config
	slotCtx int // context tokens each slot may use
	slots   int // eng.Slots(), for Submit's goroutine

	submit    chan *request
	drainReq  chan struct{} // closed by Drain: finish what is in flight, then stop
	abort     chan struct{} // closed when Drain's deadline passes: cancel the rest
	done      chan struct{} // closed when Run returns
	drainOnce sync.Once
	abortOnce sync.Once

	submitMu sync.Mutex
	closed   bool // set by Drain under submitMu

	queued    atomic.Int64
	active    atomic.Int64
	kvUsed    atomic.Int64
	cachedKV  atomic.Int64
	hostBytes atomic.Int64
	hostLen   atomic.Int64
}

// New creates a scheduler for eng. Run must be started for requests to
// make progress.
func New(eng Engine, cfg Config) (*Scheduler, error) {
	if cfg.MaxQueue <= 0 {
		cfg.MaxQueue = 64
	}
	if cfg.PrefillChunk <= 0 {
		cfg.PrefillChunk = 256
	}
	if cfg.MaxStops <= 0 {
		cfg.MaxStops = 8
	}
	if cfg.Observer == nil {
		cfg.Observer = nopObserver{}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if eng.Slots() < 1 || eng.ContextSize() < eng.Slots()*2 || eng.BatchSize() < eng.Slots() {
		return nil, fmt.Errorf("scheduler: engine with %d slots, context %d, batch %d cannot serve", eng.Slots(), eng.ContextSize(), eng.BatchSize())
	}
	return &Scheduler{
		eng:     eng,
		cfg:     cfg,
		slotCtx: eng.ContextSize() / eng.Slots(),
		slots:   eng.Slots(),
		// Room for every request Submit may accept: the queue plus one
		// per slot that is free.
		submit:   make(chan *request, cfg.MaxQueue+eng.Slots()),
		drainReq: make(chan struct{}),
		abort:    make(chan struct{}),
		done:     make(chan struct{}),
	}, nil
}

// SlotContext is the most tokens (prompt plus output) one request may hold.
func (s *Scheduler) SlotContext() int { return s.slotCtx }

// Stats returns a snapshot of the load.
func (s *Scheduler) Stats() Stats {
	return Stats{
		Queued:   int(s.queued.Load()),
		Active:   int(s.active.Load()),
		Slots:    s.eng.Slots(),
		KVUsed:   int(s.kvUsed.Load()),
		CachedKV: int(s.cachedKV.Load()),
		KVSize:   s.eng.ContextSize(),

		HostCacheBytes:   s.hostBytes.Load(),
		HostCacheEntries: int(s.hostLen.Load()),
	}
}

// Validate checks r against the scheduler's limits without submitting it.
func (s *Scheduler) Validate(r Request) error {
	if r.Embed != nil {
		return s.validateEmbed(r)
	}
	switch {
	case len(r.Prompt) == 0:
		return reqerr.Invalid("prompt", "is empty")
	case len(r.Prompt) >= s.slotCtx:
		return reqerr.Invalid("prompt", "has %d tokens; the context holds %d per request", len(r.Prompt), s.slotCtx)
	case r.MaxTokens <= 0:
		return reqerr.Invalid("max_tokens", "must be at least 1, got %d", r.MaxTokens)
	case r.MaxTokens > s.slotCtx:
		return reqerr.Invalid("max_tokens", "%d exceeds the context of %d tokens per request", r.MaxTokens, s.slotCtx)
	case r.TopLogprobs < 0 || r.TopLogprobs > MaxTopLogprobs:
		return reqerr.Invalid("top_logprobs", "must be between 0 and %d, got %d", MaxTopLogprobs, r.TopLogprobs)
	case r.Sampling.MinTokens < 0 || r.Sampling.MinTokens > r.MaxTokens:
		return reqerr.Invalid("min_tokens", "must be between 0 and max_tokens (%d), got %d", r.MaxTokens, r.Sampling.MinTokens)
	case len(r.Stop) > s.cfg.MaxStops:
		return reqerr.Invalid("stop", "has %d strings; at most %d are allowed", len(r.Stop), s.cfg.MaxStops)
	}
	for _, st := range r.Stop {
		if st == "" {
			return reqerr.Invalid("stop", "strings must not be empty")
		}
	}
	return nil
}

// Submit queues r. It fails at once with reqerr.ErrQueueFull when the queue is
// full, reqerr.ErrDraining during shutdown, or an *reqerr.InvalidError. Otherwise the
// returned channel delivers text events and, last, a Done event; it is
// closed after that. Cancelling ctx abandons the request: it leaves the
// batch at the next step (or before its next prefill chunk) and its cells
// are freed.
func (s *Scheduler) Submit(ctx context.Context, r Request) (<-chan Event, error) {
	if err := s.Validate(r); err != nil {
		return nil, err
	}
	req := &request{
		ctx: ctx,
		r:   r,
		// At most one event per token, plus the last: never blocks.
		events: make(chan Event, max(r.MaxTokens, 0)+2+promptEvents(r, s.cfg.PrefillChunk)),
	}
	// The lock orders Submit against Drain, so no request is sent after
	// the loop may have seen the drain; it is never held across a decode.
	s.submitMu.Lock()
	defer s.submitMu.Unlock()
	if s.closed {
		return nil, reqerr.ErrDraining
	}
	// Of the submitted requests not yet admitted, those beyond the free
	// slots wait; only they count against MaxQueue.
	free := int64(s.slots) - s.active.Load()
	if n := s.queued.Load(); n-free >= int64(s.cfg.MaxQueue) {
		return nil, fmt.Errorf("%d requests waiting: %w", n-free, reqerr.ErrQueueFull)
	}
	s.queued.Add(1)
	req.timings.Enqueued = s.cfg.Now()
	s.submit <- req // cannot block: queued ≤ MaxQueue + free slots ≤ cap(submit)
	return req.events, nil
}

// promptEvents is how many events r's prompt logprobs take: one per
// prefill chunk at most.
func promptEvents(r Request, chunk int) int {
	if !r.PromptLogprobs {
		return 0
	}
	return len(r.Prompt)/max(chunk, 1) + 2
}

// Drain stops accepting requests and waits for in-flight ones to finish.
// When ctx ends first, the remaining requests are cancelled with
// reqerr.ErrShutdown. Drain returns after Run has stopped.
func (s *Scheduler) Drain(ctx context.Context) error {
	s.drainOnce.Do(func() {
		s.submitMu.Lock()
		s.closed = true
		s.submitMu.Unlock()
		close(s.drainReq)
	})
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		s.abortOnce.Do(func() { close(s.abort) })
		<-s.done
		return fmt.Errorf("drain: %w", ctx.Err())
	}
}

// seq is a request holding a slot.
type seq struct {
	req       *request
	slot      int
	sampler   Sampler
	kv        []int32 // tokens at positions 0..len-1 of the slot's cells
	prefilled int     // prompt tokens in kv (prefill is done at len(prompt))
	reused    int     // prompt tokens found in the slot's prefix cache
	source    CacheSource
	next      int32 // sampled token to feed at the next step
	logitsIdx int
	// promptIdx are the batch indices of this step's prompt logits (for
	// PromptLogprobs), in prompt order.
	promptIdx []int
	generated int
	text      detok.Stream
	stops     stopMatcher
	kept      keptText
	all       strings.Builder // the whole output, only for Request.ToolCalls
}

// keptText is the start of a sequence's output, up to a byte limit.
type keptText struct {
	buf       []byte
	truncated bool
}

// add appends what fits of text within limit bytes, never splitting a
// UTF-8 character (emitted text is always whole characters).
func (k *keptText) add(text string, limit int) {
	if limit <= 0 || k.truncated || text == "" {
		return
	}
	room := limit - len(k.buf)
	if len(text) <= room {
		k.buf = append(k.buf, text...)
		return
	}
	cut := room
	for cut > 0 && !utf8.RuneStart(text[cut]) {
		cut--
	}
	k.buf = append(k.buf, text[:cut]...)
	k.truncated = true
}

func (q *seq) prefilling() bool { return q.prefilled < len(q.req.r.Prompt) }

// Run is the batch loop; it owns the engine until it returns. It returns
// when ctx is done (cancelling every request with reqerr.ErrShutdown) or when a
// Drain has emptied the scheduler.
func (s *Scheduler) Run(ctx context.Context) error {
	defer close(s.done)
	l := &loop{s: s, slots: make([]*seq, s.eng.Slots()), cache: make([][]int32, s.eng.Slots()), freed: make([]uint64, s.eng.Slots())}
	if s.cfg.HostCacheBytes > 0 && !s.cfg.NoPrefixCache {
		l.host = prefixcache.New(s.cfg.HostCacheBytes)
		defer l.host.Clear() // the states may be C memory
	}
	drained := false // the drain signal was seen: stop when idle
	for {
		if len(l.waiting) == 0 && l.nActive() == 0 {
			l.lastDone = time.Time{} // waiting idle is not the loop's work
			if drained {
				return nil
			}
			// Idle: block until there is work or a reason to stop.
			select {
			case req := <-s.submit:
				l.waiting = append(l.waiting, req)
			case <-ctx.Done():
				l.abortAll(reqerr.ErrShutdown)
				return ctx.Err()
			case <-s.abort:
				l.abortAll(reqerr.ErrShutdown)
				return nil
			case <-s.drainReq:
				// Submit sends nothing after the drain began, so what
				// was accepted is in the channel now.
				l.collect()
				drained = true
				continue
			}
		}
		select {
		case <-ctx.Done():
			l.abortAll(reqerr.ErrShutdown)
			return ctx.Err()
		case <-s.abort:
			l.abortAll(reqerr.ErrShutdown)
			return nil
		default:
		}
		l.collect()
		l.dropCancelled()
		l.admit()
		l.step()
	}
}

// loop is the state owned by Run's goroutine.
type loop struct {
	s       *Scheduler
	waiting []*request
	slots   []*seq    // active sequence per slot, nil when free
	cache   [][]int32 // tokens a free slot still holds, for prefix reuse
	freed   []uint64  // when each slot was last released, in releases
	nFreed  uint64
	host    *prefixcache.Cache // nil without a host-memory cache
	admits  []*seq             // active sequences in admission order
	// lastDone is when the previous step's work ended; zero after the
	// loop waited idle.
	lastDone time.Time
	// inStep: a step is running; requests it finishes are reported
	// (Observer.Finished, the Done event) once its Observer.Step has
	// been, so the step is recorded before the requests it ended.
	inStep   bool
	finished []func()
}

func (l *loop) nActive() int { return len(l.admits) }

// collect moves newly submitted requests into the waiting list.
func (l *loop) collect() {
	for {
		select {
		case req := <-l.s.submit:
			l.waiting = append(l.waiting, req)
		default:
			return
		}
	}
}

// dropCancelled removes requests whose caller has gone away, freeing the
// cells of those holding slots.
func (l *loop) dropCancelled() {
	l.waiting = slices.DeleteFunc(l.waiting, func(req *request) bool {
		if req.ctx.Err() == nil {
			return false
		}
		l.s.queued.Add(-1)
		req.timings.Admitted = l.s.cfg.Now()
		l.finishRequest(req, Result{Finish: FinishCancelled, PromptTokens: len(req.r.Prompt), Slot: -1}, req.ctx.Err())
		return true
	})
	for _, q := range slices.Clone(l.admits) {
		if err := q.req.ctx.Err(); err != nil {
			l.release(q, FinishCancelled, err)
		}
	}
}

// minReuse is the shortest prefix worth reusing: shorter ones (a BOS
// token shared by every prompt) save nothing and would only make a slot's
// cache look like a hit.
const minReuse = 4

// minSave is the shortest cached sequence worth keeping in host memory.
const minSave = 16

// admit gives free slots to waiting requests in arrival order. Each gets
// the free slot holding the longest prefix of its prompt, or, when none
// holds one, the free slot whose cache is least worth keeping; its
// prompt's prefix then comes from that slot, another slot or host memory,
// whichever holds the longest.
func (l *loop) admit() {
	for i := 0; i < len(l.waiting); {
		req := l.waiting[i]
		if req.r.Embed != nil {
			// Embeddings need no slot: computed now, in their own context.
			l.waiting = slices.Delete(l.waiting, i, i+1)
			l.embed(req)
			continue
		}
		if l.siblingPrefilling(req) {
			i++ // it will share the sibling's cells once they are computed
			continue
		}
		free, own := l.pickSlot(req.r.Prompt)
		if free < 0 {
			return
		}
		l.waiting = slices.Delete(l.waiting, i, i+1)
		req.timings.Admitted = l.s.cfg.Now()
		reuse, source, err := l.restorePrefix(free, own, req)
		if err != nil {
			l.cache[free] = nil
			l.s.queued.Add(-1)
			l.finishRequest(req, Result{Finish: FinishError, PromptTokens: len(req.r.Prompt), Slot: free}, fmt.Errorf("%w: free slot %d: %w", reqerr.ErrEngine, free, err))
			continue
		}
		req.timings.CacheRestored = l.s.cfg.Now()
		sampler, err := l.s.eng.NewSampler(req.r.Sampling)
		if err != nil {
			// Transports validate grammars before submitting; one that
			// still fails here is the request's fault, not the engine's.
			var ie *reqerr.InvalidError
			if !errors.As(err, &ie) {
				err = fmt.Errorf("%w: sampler: %w", reqerr.ErrEngine, err)
			}
			l.cache[free] = req.r.Prompt[:reuse]
			l.s.queued.Add(-1)
			l.finishRequest(req, Result{Finish: FinishError, PromptTokens: len(req.r.Prompt), Slot: free}, err)
			continue
		}
		q := &seq{
			req:       req,
			slot:      free,
			sampler:   sampler,
			kv:        append(make([]int32, 0, len(req.r.Prompt)+req.r.MaxTokens), req.r.Prompt[:reuse]...),
			prefilled: reuse,
			reused:    reuse,
			source:    source,
			stops:     stopMatcher{stops: req.r.Stop},
		}
		l.cache[free] = nil
		l.slots[free] = q
		l.admits = append(l.admits, q)
		// Active first, then queued: Submit never sees the slot as both
		// free and unclaimed.
		l.s.active.Store(int64(len(l.admits)))
		l.s.queued.Add(-1)
		l.updateKV()
	}
}

// siblingPrefilling reports whether req shares its prefill (SharePrefill)
// and a sequence with the same prompt is still computing it.
func (l *loop) siblingPrefilling(req *request) bool {
	if !req.r.SharePrefill || l.s.cfg.NoPrefixCache || req.r.NoCache || req.r.PromptLogprobs {
		return false
	}
	for _, q := range l.admits {
		if q.prefilling() && slices.Equal(q.req.r.Prompt, req.r.Prompt) {
			return true
		}
	}
	return false
}

// pickSlot returns the free slot for prompt and the length of the prefix
// of it that slot holds; -1 when no slot is free.
func (l *loop) pickSlot(prompt []int32) (slot, held int) {
	slot = -1
	for i, q := range l.slots {
		if q != nil {
			continue
		}
		if n := prefixcache.CommonPrefix(l.cache[i], prompt); slot < 0 || n > held {
			slot, held = i, n
		}
	}
	if slot < 0 || held >= minReuse {
		return slot, held
	}
	// No slot holds a prefix worth having: take an empty one, else the
	// one released longest ago.
	for i, q := range l.slots {
		if q != nil || i == slot {
			continue
		}
		a, b := len(l.cache[i]) == 0, len(l.cache[slot]) == 0
		if a && !b || a == b && l.freed[i] < l.freed[slot] {
			slot = i
		}
	}
	return slot, prefixcache.CommonPrefix(l.cache[slot], prompt)
}

// restorePrefix prepares slot's cells for req: the longest prefix of its
// prompt that the slot itself, another slot (whose cells it then shares)
// or the host cache holds stays or is restored, the rest is freed. What
// the slot held beyond that goes to the host cache first.
func (l *loop) restorePrefix(slot, own int, req *request) (int, CacheSource, error) {
	prompt := req.r.Prompt
	eng := l.s.eng
	from, shared := -1, 0
	var entry *prefixcache.Entry
	hosted := 0
	if l.s.cfg.NoPrefixCache || req.r.NoCache || req.r.PromptLogprobs {
		own = 0
	} else {
		for i, q := range l.slots {
			if i == slot {
				continue
			}
			held := l.cache[i]
			if q != nil {
				held = q.kv
			}
			if n := prefixcache.CommonPrefix(held, prompt); n > shared {
				from, shared = i, n
			}
		}
		if l.host != nil {
			entry, hosted = l.host.Lookup(prompt)
		}
	}
	// At least one prompt token must run to produce logits.
	limit := len(prompt) - 1
	own, shared, hosted = min(own, limit), min(shared, limit), min(hosted, limit)
	keep, source := 0, CacheNone
	switch best := max(own, shared, hosted); {
	case best < minReuse:
	case best == own:
		keep, source = own, CacheSlot
	case best == shared:
		source = CacheShared
	default:
		source = CacheHost
	}
	l.save(slot, keep)
	if err := eng.RemoveSeq(slot, keep, -1); err != nil {
		return 0, CacheNone, err
	}
	switch source {
	case CacheShared:
		if err := eng.CopySeq(from, slot, 0, shared); err != nil {
			return 0, CacheNone, errors.Join(err, eng.RemoveSeq(slot, 0, -1))
		}
		return shared, source, nil
	case CacheHost:
		if err := eng.LoadSeq(slot, entry.State); err != nil {
			// A state that does not load is a lost optimisation, not a
			// failed request (the slot is left empty): compute the
			// prompt instead.
			return 0, CacheNone, nil
		}
		return hosted, source, eng.RemoveSeq(slot, hosted, -1)
	}
	return keep, source, nil
}

// save copies what a free slot holds to the host cache before its cells
// past keep are freed, unless that is short or already held there.
func (l *loop) save(slot, keep int) {
	held := l.cache[slot]
	if l.host == nil || len(held) <= keep || len(held) < minSave || l.host.Covers(held) {
		return
	}
	state, err := l.s.eng.SaveSeq(slot)
	if err != nil {
		return // the cells are simply not kept
	}
	l.host.Put(&prefixcache.Entry{Tokens: slices.Clone(held), State: state})
	l.s.hostBytes.Store(l.host.Bytes())
	l.s.hostLen.Store(int64(l.host.Len()))
}

// step builds and runs one batch: a decode token for every sequence past
// its prompt, then prompt chunks, in admission order, within the budget.
func (l *loop) step() {
	if len(l.admits) == 0 {
		return
	}
	l.inStep = true
	defer l.endStep()
	s := l.s
	info := StepInfo{Start: s.cfg.Now(), Device: s.eng.Device()}
	if !l.lastDone.IsZero() {
		info.Gap = info.Start.Sub(l.lastDone)
	}
	budget := s.eng.BatchSize()
	var withLogits []*seq
	chunks := map[*seq]int{}
	add := func(q *seq, tok int32, logits bool) error {
		idx, err := s.eng.Add(tok, len(q.kv), q.slot, logits)
		if err != nil {
			return err
		}
		q.kv = append(q.kv, tok)
		if logits {
			q.logitsIdx = idx
			withLogits = append(withLogits, q)
		}
		budget--
		return nil
	}
	var err error
	for _, q := range l.admits {
		if q.prefilling() || err != nil {
			continue
		}
		err = add(q, q.next, true)
		info.DecodeTokens++
		info.Seqs = append(info.Seqs, StepSeq{ID: q.req.r.ID, Ctx: q.req.ctx, Slot: q.slot, Decode: true})
	}
	for _, q := range l.admits {
		if !q.prefilling() || budget <= 0 || err != nil {
			continue
		}
		prompt := q.req.r.Prompt
		n := min(len(prompt)-q.prefilled, budget, s.cfg.PrefillChunk)
		for i := range n {
			p := q.prefilled + i
			if p == len(prompt)-1 {
				err = add(q, prompt[p], true)
			} else if q.req.r.PromptLogprobs {
				// Logits at p, not sampled from: they give p+1's logprob.
				var idx int
				if idx, err = s.eng.Add(prompt[p], len(q.kv), q.slot, true); err == nil {
					q.kv = append(q.kv, prompt[p])
					q.promptIdx = append(q.promptIdx, idx)
					budget--
				}
			} else {
				err = add(q, prompt[p], false)
			}
			if err != nil {
				break
			}
		}
		q.prefilled += n
		chunks[q] = n
		info.PrefillTokens += n
		info.Seqs = append(info.Seqs, StepSeq{ID: q.req.r.ID, Ctx: q.req.ctx, Slot: q.slot, PrefillTokens: n})
	}
	info.DecodeStart = s.cfg.Now()
	if err == nil {
		err = s.eng.Decode()
	}
	info.End = s.cfg.Now()
	if err != nil {
		// The batch is lost; fail every sequence that was in it.
		info.Err = err
		for _, st := range info.Seqs {
			if q := l.slots[st.Slot]; q != nil {
				l.release(q, FinishError, fmt.Errorf("%w: %w", reqerr.ErrEngine, err))
			}
		}
		info.KVUsed = l.updateKV()
		s.cfg.Observer.Step(info)
		return
	}
	for q, n := range chunks {
		q.req.timings.PrefillChunks = append(q.req.timings.PrefillChunks, Chunk{Start: info.Start, End: info.End, Tokens: n})
		if q.req.r.PromptLogprobs {
			if err := l.promptLogprobs(q, n); err != nil {
				l.release(q, FinishError, fmt.Errorf("%w: %w", reqerr.ErrEngine, err))
			}
		}
	}
	nSeqs := len(info.Seqs)
	for _, q := range withLogits {
		if l.slots[q.slot] != q {
			continue // released above
		}
		if !q.prefilling() && q.generated > 0 {
			q.req.timings.DecodeSteps++
			q.req.timings.DecodeBatchSum += nSeqs
		}
		t0 := s.cfg.Now()
		tok, err := q.sampler.Sample(q.logitsIdx)
		t1 := s.cfg.Now()
		info.Sample += t1.Sub(t0)
		if err != nil {
			// A grammar that allows no token is the request's doing.
			l.release(q, FinishError, reqerr.Invalid("grammar", "%v", err))
			continue
		}
		l.accept(q, tok, info.End)
		info.Emit += s.cfg.Now().Sub(t1)
	}
	info.KVUsed = l.updateKV()
	l.lastDone = s.cfg.Now()
	s.cfg.Observer.Step(info)
}

// accept handles a sampled token: stop conditions, text, events.
func (l *loop) accept(q *seq, tok int32, now time.Time) {
	t := &q.req.timings
	if t.FirstToken.IsZero() {
		t.FirstToken = now
	}
	if l.s.eng.IsEOG(tok) {
		l.emit(q, q.text.Flush()+q.stops.flush())
		l.release(q, FinishStop, nil)
		return
	}
	q.generated++
	piece, err := l.s.eng.Piece(tok, q.req.r.Special)
	if err != nil {
		l.release(q, FinishError, fmt.Errorf("%w: %w", reqerr.ErrEngine, err))
		return
	}
	var info []TokenInfo
	if q.req.r.Logprobs {
		ti, err := l.tokenInfo(q.logitsIdx, tok, q.req.r.Special, q.req.r.TopLogprobs)
		if err != nil {
			l.release(q, FinishError, fmt.Errorf("%w: %w", reqerr.ErrEngine, err))
			return
		}
		info = []TokenInfo{ti}
	}
	text, stopped := q.stops.push(q.text.Add(piece))
	l.emitTokens(q, text, info)
	switch {
	case stopped:
		l.release(q, FinishStop, nil)
	case q.generated >= q.req.r.MaxTokens || len(q.kv) >= l.s.slotCtx:
		l.emit(q, q.text.Flush()+q.stops.flush())
		l.release(q, FinishLength, nil)
	default:
		q.next = tok
	}
}

// tokenInfo is tok's logprob and the top alternatives at batch index idx.
// tok's bytes are as its text has them (special: control tokens as their
// text); the alternatives always show control tokens, so a client sees
// what it was that the model nearly ended with.
func (l *loop) tokenInfo(idx int, tok int32, special bool, top int) (TokenInfo, error) {
	lp, alts, err := l.s.eng.Logprobs(idx, tok, top)
	if err != nil {
		return TokenInfo{}, err
	}
	b, err := l.s.eng.Piece(tok, special)
	if err != nil {
		return TokenInfo{}, err
	}
	ti := TokenInfo{TokenLogprob: TokenLogprob{ID: tok, Bytes: b, Logprob: lp}, Top: alts}
	for k := range ti.Top {
		if ti.Top[k].Bytes, err = l.s.eng.Piece(ti.Top[k].ID, true); err != nil {
			return TokenInfo{}, err
		}
	}
	return ti, nil
}

// promptLogprobs reports the logprobs of the prompt tokens whose
// predecessors were in the last step's chunk of n tokens. Their bytes are
// their text, without control tokens (BOS is empty), as the prompt has it.
func (l *loop) promptLogprobs(q *seq, n int) error {
	prompt := q.req.r.Prompt
	from := q.prefilled - n // the chunk's first position
	var out []TokenInfo
	if from == 0 {
		b, err := l.s.eng.Piece(prompt[0], false)
		if err != nil {
			return err
		}
		out = append(out, TokenInfo{TokenLogprob: TokenLogprob{ID: prompt[0], Bytes: b}, NoLogprob: true})
	}
	for k, idx := range q.promptIdx {
		ti, err := l.tokenInfo(idx, prompt[from+k+1], false, q.req.r.TopLogprobs)
		if err != nil {
			return err
		}
		out = append(out, ti)
	}
	q.promptIdx = q.promptIdx[:0]
	q.req.events <- Event{PromptTokens: out}
	return nil
}

func (l *loop) emit(q *seq, text string) { l.emitTokens(q, text, nil) }

// emitTokens sends text and the token infos of the tokens that made it
// (one event, none when both are empty).
func (l *loop) emitTokens(q *seq, text string, tokens []TokenInfo) {
	if text == "" && len(tokens) == 0 {
		return
	}
	if text != "" {
		q.kept.add(text, q.req.r.KeepText)
		if q.req.r.ToolCalls != nil {
			q.all.WriteString(text)
		}
	}
	q.req.events <- Event{Text: text, Tokens: tokens}
}

// release ends an active sequence: its slot is freed at once, keeping the
// cells of a sequence that finished normally as a prefix cache.
func (l *loop) release(q *seq, finish FinishReason, err error) {
	keep := finish == FinishStop || finish == FinishLength
	l.nFreed++
	l.freed[q.slot] = l.nFreed
	if keep && !l.s.cfg.NoPrefixCache {
		l.cache[q.slot] = q.kv
	} else {
		l.cache[q.slot] = nil
		if rmErr := l.s.eng.RemoveSeq(q.slot, 0, -1); rmErr != nil && err == nil {
			err = fmt.Errorf("%w: free slot %d: %w", reqerr.ErrEngine, q.slot, rmErr)
		}
	}
	rejected := q.sampler.Rejected()
	q.sampler.Close()
	l.slots[q.slot] = nil
	l.admits = slices.DeleteFunc(l.admits, func(x *seq) bool { return x == q })
	l.s.active.Store(int64(len(l.admits)))
	l.updateKV() // before the final event, so callers see the freed cells
	res := Result{
		Finish:           finish,
		PromptTokens:     len(q.req.r.Prompt),
		CompletionTokens: q.generated,
		CachedTokens:     q.reused,
		CacheSource:      q.source,
		Slot:             q.slot,
		Text:             string(q.kept.buf),
		TextTruncated:    q.kept.truncated,
		Constrained:      q.req.r.Sampling.Grammar != "",
		GrammarRejected:  rejected,
	}
	if keep && q.req.r.ToolCalls != nil {
		res.ToolCalls = q.req.r.ToolCalls(q.all.String())
	}
	l.finishRequest(q.req, res, err)
}

// finishRequest sends the final event and closes the stream.
func (l *loop) finishRequest(req *request, res Result, err error) {
	req.timings.Finished = l.s.cfg.Now()
	res.ID = req.r.ID
	res.Timings = req.timings
	res.Err = err
	done := func() {
		l.s.cfg.Observer.Finished(req.ctx, res)
		req.events <- Event{Done: true, Result: &res, Err: err}
		close(req.events)
	}
	if l.inStep {
		l.finished = append(l.finished, done)
		return
	}
	done()
}

// endStep reports the requests the step finished, after the step itself.
func (l *loop) endStep() {
	l.inStep = false
	for _, done := range l.finished {
		done()
	}
	l.finished = l.finished[:0]
}

// abortAll cancels everything, for shutdown.
func (l *loop) abortAll(err error) {
	l.collect()
	for _, req := range l.waiting {
		l.s.queued.Add(-1)
		req.timings.Admitted = l.s.cfg.Now()
		l.finishRequest(req, Result{Finish: FinishCancelled, PromptTokens: len(req.r.Prompt), Slot: -1}, err)
	}
	l.waiting = nil
	for _, q := range slices.Clone(l.admits) {
		l.release(q, FinishCancelled, err)
	}
}

// updateKV publishes the cache use for Stats and returns the cells in use.
func (l *loop) updateKV() int {
	cached := 0
	for i, c := range l.cache {
		if l.slots[i] == nil {
			cached += len(c)
		}
	}
	l.s.cachedKV.Store(int64(cached))
	used := l.s.eng.KVUsed()
	l.s.kvUsed.Store(int64(used))
	return used
}
