package synth

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"

	"github.com/lumenllm/lumen/internal/gguf"
)

// How the weights are chosen.
//
// Purely random weights make a poor test model: attention over random keys
// is nearly uniform, so the hidden state is dominated by an average over the
// whole context that barely moves from one step to the next, and greedy
// decoding soon repeats one token forever. Instead the model is built so the
// residual stream carries the last token's embedding and the output layer
// maps it to a fixed successor:
//
//   - token embeddings are random rows of RMS embedStd; the blocks' random
//     matrices (std weightStd, the residual-writing ones scaled down with
//     width and depth) perturb them by roughly a tenth, so the final hidden
//     state is the current token's embedding plus a context-dependent part;
//   - the NORMAL tokens are arranged in one random cycle; the output row of
//     each NORMAL token is small noise plus a multiple of its predecessor's
//     embedding, scaled so that the successor's logit is about greedyLogit
//     while the other logits are roughly N(0, 1);
//   - output rows of the other tokens (specials, bytes) are zero, so their
//     logit is 0, below the best NORMAL logit.
//
// So greedy decoding walks the cycle: it visits every NORMAL token before
// repeating, never emits EOS, control or byte tokens, and its text is
// printable. After a non-NORMAL token (such as the <0x0A> ending a chat
// prompt) the next greedy token is whichever NORMAL token the noise favours.
// Sampling at temperature 1 still spreads much of the probability over other
// tokens, so sampled text varies and may end with EOS. Logit values, unlike
// the greedy choice, do depend on the context through the blocks.
const (
	weightStd   = 0.02 // attention and feed-forward matrices
	embedStd    = 1.0  // RMS of each token embedding
	greedyLogit = 10.0 // successor's logit when the hidden state is just the embedding
	outputNoise = 0.5  // std of the noise part of a logit

	// firstNormal is the id of the first NORMAL token (after 3 specials and
	// 256 bytes).
	firstNormal = 3 + 256
)

// init kinds for planned tensors.
const (
	initRandom    = iota // uniform, std plannedTensor.std
	initOnes             // norm weights
	initEmbedding        // token_embd: rows seeded by token id
	initOutput           // output: noise plus predecessors' embeddings
)

// plannedTensor is one tensor of the model before it is generated.
type plannedTensor struct {
	name string
	typ  gguf.GGMLType
	dims []uint64
	init int
	std  float32
}

func (t plannedTensor) elements() uint64 {
	n := uint64(1)
	for _, d := range t.dims {
		n *= d
	}
	return n
}

// tensors lists the model's tensors with llama.cpp's names and ggml shapes
// (ne0 first), as llama-model.cpp creates them for LLM_ARCH_LLAMA: ne0 of
// a weight matrix is its input width.
func (c Config) tensors() []plannedTensor {
	embd, ff, vocab, kv := uint64(c.Embd), uint64(c.FF), uint64(c.Vocab), uint64(c.KVDim())
	mat := func(name string, in, out uint64) plannedTensor {
		return plannedTensor{name: name, typ: c.Type, dims: []uint64{in, out}, init: initRandom, std: weightStd}
	}
	norm := func(name string) plannedTensor {
		return plannedTensor{name: name, typ: gguf.TypeF32, dims: []uint64{embd}, init: initOnes}
	}
	embed := mat("token_embd.weight", embd, vocab)
	embed.init, embed.std = initEmbedding, embedStd
	// Matrices that write into the residual stream are scaled down with
	// depth (as in GPT-2's initialisation) and width, so that all blocks
	// together perturb the embedding by roughly a tenth at every preset size.
	resid := func(m plannedTensor) plannedTensor {
		m.std = weightStd * float32(math.Sqrt(min(1, 64/float64(c.Embd))/float64(2*c.Layers)))
		return m
	}
	ts := []plannedTensor{embed}
	for i := range c.Layers {
		blk := func(s string) string { return fmt.Sprintf("blk.%d.%s.weight", i, s) }
		ts = append(ts,
			norm(blk("attn_norm")),
			mat(blk("attn_q"), embd, embd),
			mat(blk("attn_k"), embd, kv),
			mat(blk("attn_v"), embd, kv),
			resid(mat(blk("attn_output"), embd, embd)),
			norm(blk("ffn_norm")),
			mat(blk("ffn_gate"), embd, ff),
			resid(mat(blk("ffn_down"), ff, embd)),
			mat(blk("ffn_up"), embd, ff),
		)
	}
	out := mat("output.weight", embd, vocab)
	out.init = initOutput
	return append(ts, norm("output_norm.weight"), out)
}

// Stream ids keep the random streams of different purposes apart; tensor
// streams use the tensor index.
const (
	streamPerm   = 1 << 40
	streamEmbed  = 2 << 40
	streamOutput = 3 << 40
)

// generator produces tensor data deterministically from the Config.
type generator struct {
	cfg  Config
	pr   *progressCounter
	pred []int32 // pred[u]: the NORMAL token whose greedy successor is u
}

func newGenerator(cfg Config, pr *progressCounter) *generator {
	rng := rand.New(rand.NewPCG(cfg.Seed, streamPerm))
	cycle := make([]int32, cfg.Vocab-firstNormal)
	for i := range cycle {
		cycle[i] = int32(firstNormal + i)
	}
	rng.Shuffle(len(cycle), func(i, j int) { cycle[i], cycle[j] = cycle[j], cycle[i] })
	pred := make([]int32, cfg.Vocab)
	for i, tok := range cycle {
		pred[cycle[(i+1)%len(cycle)]] = tok
	}
	return &generator{cfg: cfg, pr: pr, pred: pred}
}

// embedRow writes token tok's embedding into x, scaled to RMS exactly
// embedStd so every successor logit is the same size. Each row has its own
// stream so the output layer can regenerate any row without holding the
// table.
func (g *generator) embedRow(tok int, x []float32) {
	uniform(rand.NewPCG(g.cfg.Seed, streamEmbed+uint64(tok)), x, embedStd)
	var ss float64
	for _, v := range x {
		ss += float64(v) * float64(v)
	}
	scale := float32(embedStd / math.Sqrt(ss/float64(len(x))))
	for i := range x {
		x[i] *= scale
	}
}

// outputRow writes output row u into x. With hidden state h = E[t] the
// logit of u is x·h/rms(h); for u = succ(t) the predecessor term gives
// beta·|E[t]|²/embedStd = beta·embedStd·Embd, which beta sets to
// greedyLogit. For other rows it gives greedyLogit·cos(E[p], E[t]), of std
// greedyLogit/sqrt(Embd), and the noise adds std outputNoise.
func (g *generator) outputRow(u int, x []float32) {
	if u < firstNormal {
		clear(x)
		return
	}
	d := float32(g.cfg.Embd)
	uniform(rand.NewPCG(g.cfg.Seed, streamOutput+uint64(u)), x, outputNoise/float32(math.Sqrt(float64(d))))
	beta := greedyLogit / (embedStd * d)
	e := make([]float32, len(x))
	g.embedRow(int(g.pred[u]), e)
	for i, v := range e {
		x[i] += beta * v
	}
}

// chunkElems is how many values are generated and written at a time: a
// multiple of the Q8_0 block, and small enough to stay in cache.
const chunkElems = 1 << 15

// fill returns the writer callback for one tensor. Random tensors draw from
// a PCG stream keyed by (seed, tensor index), so the bytes depend only on
// the Config and not on the order of generation.
func (g *generator) fill(t plannedTensor, index uint64) func(io.Writer) error {
	return func(w io.Writer) error {
		pcg := rand.NewPCG(g.cfg.Seed, index)
		row := int(t.dims[0])
		// Row-wise tensors need whole rows per chunk; a row of Embd values
		// is a multiple of 32 whenever the type is Q8_0.
		chunk := max(chunkElems/row, 1) * row
		vals := make([]float32, chunk)
		var out []byte
		var next int // next row for row-wise tensors
		for left := t.elements(); left > 0; {
			k := int(min(left, uint64(chunk)))
			x := vals[:k]
			switch t.init {
			case initOnes:
				for i := range x {
					x[i] = 1
				}
			case initEmbedding:
				for r := 0; r < k; r += row {
					g.embedRow(next, x[r:r+row])
					next++
				}
			case initOutput:
				for r := 0; r < k; r += row {
					g.outputRow(next, x[r:r+row])
					next++
				}
			default:
				uniform(pcg, x, t.std)
			}
			out = encode(out[:0], t.typ, x)
			if _, err := w.Write(out); err != nil {
				return err
			}
			g.pr.add(len(out))
			left -= uint64(k)
		}
		return nil
	}
}

// uniform fills x with values uniform on [-a, a) where a = std·sqrt(3), two
// values per 64-bit draw.
func uniform(pcg *rand.PCG, x []float32, std float32) {
	const inv = 1.0 / (1 << 32)
	a := std * float32(math.Sqrt(3))
	scale := 2 * a * inv
	i := 0
	for ; i+1 < len(x); i += 2 {
		u := pcg.Uint64()
		x[i] = float32(uint32(u))*scale - a
		x[i+1] = float32(u>>32)*scale - a
	}
	if i < len(x) {
		x[i] = float32(uint32(pcg.Uint64()))*scale - a
	}
}

// encode appends x in type t's on-disk form.
func encode(dst []byte, t gguf.GGMLType, x []float32) []byte {
	switch t {
	case gguf.TypeF32:
		for _, v := range x {
			dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(v))
		}
	case gguf.TypeF16:
		for _, v := range x {
			dst = binary.LittleEndian.AppendUint16(dst, F32ToF16(v))
		}
	case gguf.TypeQ8_0:
		dst = QuantizeQ8_0(dst, x)
	default:
		// Validate admits only the types above.
		panic(errors.New("synth: unsupported tensor type " + t.String()))
	}
	return dst
}

// progressCounter reports bytes written across all tensors.
type progressCounter struct {
	fn          func(done, total int64)
	done, total int64
}

func (p *progressCounter) add(n int) {
	p.done += int64(n)
	if p.fn != nil {
		p.fn(p.done, p.total)
	}
}
