package scheduler

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/lumenllm/lumen/internal/prefixcache"
)

// fakeEngine is a deterministic stand-in for a model. Tokens are bytes
// (piece of token t is the single byte t) plus eogToken. The "logits" of a
// position pick a printable byte from a hash of every token the sequence
// holds, so any mistake in positions, cache reuse or cell removal changes
// the output.
type fakeEngine struct {
	slots, ctxSize, batchSize int

	// gate, when set, makes every Decode wait for a value first, so tests
	// can hold the loop at a known point.
	gate chan struct{}
	// eogAfter, when > 0, makes a sequence emit eogToken once it holds
	// that many tokens.
	eogAfter int
	// failDecode makes the next Decode fail.
	failDecode bool
	// failLoad makes every LoadSeq fail.
	failLoad bool

	mu                   sync.Mutex // guards the fields below, read by tests
	kv                   [][]int32
	pending              []fakeTok
	next                 map[int]int32 // batch index → sampled token of the last Decode
	steps                [][]fakeTok
	saves, loads, copies int
	liveStates           int // saved and not yet freed
}

type fakeTok struct {
	tok       int32
	pos, slot int
	logits    bool
}

const eogToken = 256

func newFakeEngine(slots, ctxSize, batchSize int) *fakeEngine {
	return &fakeEngine{slots: slots, ctxSize: ctxSize, batchSize: batchSize, kv: make([][]int32, slots)}
}

func (f *fakeEngine) Slots() int       { return f.slots }
func (f *fakeEngine) ContextSize() int { return f.ctxSize }
func (f *fakeEngine) BatchSize() int   { return f.batchSize }
func (f *fakeEngine) Device() string   { return "cpu" }
func (f *fakeEngine) IsEOG(t int32) bool {
	return t == eogToken
}

func (f *fakeEngine) Piece(t int32, _ bool) ([]byte, error) {
	if t < 0 || t >= eogToken {
		return nil, fmt.Errorf("fake: no piece for %d", t)
	}
	return []byte{byte(t)}, nil
}

func (f *fakeEngine) Add(tok int32, pos, slot int, logits bool) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.pending) >= f.batchSize {
		return -1, fmt.Errorf("fake: batch full")
	}
	f.pending = append(f.pending, fakeTok{tok, pos, slot, logits})
	return len(f.pending) - 1, nil
}

func (f *fakeEngine) Decode() error {
	if f.gate != nil {
		<-f.gate
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	batch := f.pending
	f.pending = nil
	f.steps = append(f.steps, batch)
	if f.failDecode {
		f.failDecode = false
		return fmt.Errorf("fake: decode failed")
	}
	f.next = map[int]int32{}
	for i, t := range batch {
		if t.pos != len(f.kv[t.slot]) {
			return fmt.Errorf("fake: slot %d token at position %d, but it holds %d", t.slot, t.pos, len(f.kv[t.slot]))
		}
		if len(f.kv[t.slot]) >= f.ctxSize/f.slots {
			return fmt.Errorf("fake: slot %d over its context", t.slot)
		}
		f.kv[t.slot] = append(f.kv[t.slot], t.tok)
		if t.logits {
			f.next[i] = f.predict(f.kv[t.slot])
		}
	}
	return nil
}

// predict is the fake model: a printable byte from a hash of the history,
// or EOG once the history is long enough.
func (f *fakeEngine) predict(hist []int32) int32 {
	if f.eogAfter > 0 && len(hist) >= f.eogAfter {
		return eogToken
	}
	return fakeNext(hist)
}

func fakeNext(hist []int32) int32 {
	h := uint32(2166136261)
	for _, t := range hist {
		h = (h ^ uint32(t)) * 16777619
	}
	return int32('a' + h%26)
}

// Logprobs is the fake model's distribution at idx: its prediction
// there has logprob log(0.9), each other token log(0.1/256).
func (f *fakeEngine) Logprobs(idx int, tok int32, top int) (float32, []TokenLogprob, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	pred, ok := f.next[idx]
	if !ok {
		return 0, nil, fmt.Errorf("fake: no logits at batch index %d", idx)
	}
	lp := func(t int32) float32 {
		if t == pred {
			return float32(math.Log(0.9))
		}
		return float32(math.Log(0.1 / 256))
	}
	var alts []TokenLogprob
	for t := int32(0); len(alts) < top; t++ {
		if len(alts) == 0 {
			alts = append(alts, TokenLogprob{ID: pred, Logprob: lp(pred)})
		}
		if t != pred && len(alts) < top {
			alts = append(alts, TokenLogprob{ID: t, Logprob: lp(t)})
		}
	}
	return lp(tok), alts, nil
}

func (f *fakeEngine) RemoveSeq(slot, from, to int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if slot < 0 || slot >= f.slots {
		return fmt.Errorf("fake: slot %d", slot)
	}
	if to >= 0 && to < len(f.kv[slot]) {
		return fmt.Errorf("fake: only suffix removal is modelled")
	}
	if from < len(f.kv[slot]) {
		f.kv[slot] = f.kv[slot][:from]
	}
	return nil
}

func (f *fakeEngine) CopySeq(src, dst, from, to int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if from != 0 || len(f.kv[dst]) != 0 || to > len(f.kv[src]) {
		return fmt.Errorf("fake: only copying a prefix into an empty slot is modelled")
	}
	f.kv[dst] = slices.Clone(f.kv[src][:to])
	f.copies++
	return nil
}

// fakeState holds a slot's tokens encoded, which is all the fake's cells
// hold; the engine counts the states not yet freed.
type fakeState struct {
	f     *fakeEngine
	b     []byte
	freed bool
}

func (s *fakeState) Size() int { return len(s.b) }
func (s *fakeState) Free() {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	if s.freed {
		panic("fake: state freed twice")
	}
	s.freed = true
	s.f.liveStates--
}

func (f *fakeEngine) SaveSeq(slot int) (prefixcache.State, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.saves++
	f.liveStates++
	st := &fakeState{f: f}
	for _, t := range f.kv[slot] {
		st.b = binary.LittleEndian.AppendUint32(st.b, uint32(t))
	}
	return st, nil
}

func (f *fakeEngine) LoadSeq(slot int, state prefixcache.State) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := state.(*fakeState)
	if st.freed {
		return fmt.Errorf("fake: load of a freed state")
	}
	f.kv[slot] = nil
	if f.failLoad {
		return fmt.Errorf("fake: load failed")
	}
	f.loads++
	for i := 0; i+4 <= len(st.b); i += 4 {
		f.kv[slot] = append(f.kv[slot], int32(binary.LittleEndian.Uint32(st.b[i:])))
	}
	return nil
}

func (f *fakeEngine) KVUsed() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, s := range f.kv {
		n += len(s)
	}
	return n
}

func (f *fakeEngine) NewSampler(SamplingParams) (Sampler, error) { return &fakeSampler{f: f}, nil }

type fakeSampler struct{ f *fakeEngine }

func (s *fakeSampler) Sample(idx int) (int32, error) {
	s.f.mu.Lock()
	defer s.f.mu.Unlock()
	return s.f.next[idx], nil
}
func (s *fakeSampler) Rejected() int { return 0 }
func (s *fakeSampler) Close() error  { return nil }

// expectText is what the fake model generates for prompt, alone.
func expectText(prompt []int32, maxTokens int) string {
	hist := append([]int32(nil), prompt...)
	out := make([]byte, 0, maxTokens)
	for range maxTokens {
		t := fakeNext(hist)
		out = append(out, byte(t))
		hist = append(hist, t)
	}
	return string(out)
}

func tokens(s string) []int32 {
	out := make([]int32, len(s))
	for i := range len(s) {
		out[i] = int32(s[i])
	}
	return out
}
