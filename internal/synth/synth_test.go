package synth

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/lumenllm/lumen/internal/gguf"
)

func mustPreset(t *testing.T, name string) Config {
	t.Helper()
	c, err := Preset(name)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestPresets(t *testing.T) {
	tests := []struct {
		name         string
		minP, maxP   uint64
		typ          gguf.GGMLType
		vocab, layer int
	}{
		{"tiny", 100_000, 200_000, gguf.TypeF32, 512, 2},
		{"small", 2_000_000, 15_000_000, gguf.TypeF16, 1024, 4},
		{"250m", 200_000_000, 300_000_000, gguf.TypeF16, 32000, 16},
		{"1b", 900_000_000, 1_300_000_000, gguf.TypeF16, 32000, 22},
	}
	if have, want := len(Presets()), len(tests); have != want {
		t.Errorf("Presets: have %d, want %d", have, want)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustPreset(t, tt.name)
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}
			if p := c.ParamCount(); p < tt.minP || p > tt.maxP {
				t.Errorf("ParamCount %d outside [%d, %d]", p, tt.minP, tt.maxP)
			}
			have := []any{c.Type, c.Vocab, c.Layers}
			want := []any{tt.typ, tt.vocab, tt.layer}
			if !reflect.DeepEqual(have, want) {
				t.Errorf("have %v, want %v", have, want)
			}
		})
	}
	if _, err := Preset("7b"); !errors.Is(err, ErrUnknownPreset) {
		t.Errorf("Preset(7b): have %v, want ErrUnknownPreset", err)
	}
}

func TestValidateRejects(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(*Config)
		field string
	}{
		{"zero layers", func(c *Config) { c.Layers = 0 }, "Layers"},
		{"too many layers", func(c *Config) { c.Layers = 513 }, "Layers"},
		{"negative embd", func(c *Config) { c.Embd = -64 }, "Embd"},
		{"zero heads", func(c *Config) { c.Heads = 0 }, "Heads"},
		{"zero kv heads", func(c *Config) { c.KVHeads = 0 }, "KVHeads"},
		{"zero ff", func(c *Config) { c.FF = 0 }, "FF"},
		{"zero context", func(c *Config) { c.Context = 0 }, "Context"},
		{"embd not divisible by heads", func(c *Config) { c.Heads = 3 }, "Embd"},
		{"heads not divisible by kv heads", func(c *Config) { c.KVHeads = 3 }, "KVHeads"},
		{"odd head dim", func(c *Config) { c.Embd, c.Heads, c.KVHeads = 60, 4, 4 }, "Heads"},
		{"vocab too small", func(c *Config) { c.Vocab = MinVocab - 1 }, "Vocab"},
		{"vocab too big", func(c *Config) { c.Vocab = MaxVocab + 1 }, "Vocab"},
		{"zero rope base", func(c *Config) { c.RopeBase = 0 }, "RopeBase"},
		{"NaN eps", func(c *Config) { c.NormEps = float32(math.NaN()) }, "NormEps"},
		{"Q4_0 weights", func(c *Config) { c.Type = gguf.TypeQ4_0 }, "Type"},
		{"Q8_0 embd 48", func(c *Config) { c.Type, c.Embd, c.Heads, c.KVHeads = gguf.TypeQ8_0, 48, 4, 2 }, "Embd"},
		{"Q8_0 ff 100", func(c *Config) { c.Type, c.FF = gguf.TypeQ8_0, 100 }, "FF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustPreset(t, "tiny")
			tt.edit(&c)
			err := c.Validate()
			var ce *ConfigError
			if !errors.Is(err, ErrInvalidConfig) || !errors.As(err, &ce) {
				t.Fatalf("have %v, want a *ConfigError", err)
			}
			if ce.Field != tt.field {
				t.Errorf("field: have %s, want %s (%v)", ce.Field, tt.field, err)
			}
		})
	}
}

func writeBytes(t *testing.T, c Config) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Write(&buf, c); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func readBack(t *testing.T, b []byte) *gguf.File {
	t.Helper()
	f, err := gguf.Read(bytes.NewReader(b), int64(len(b)), gguf.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestWriteTinyRoundTrip(t *testing.T) {
	c := mustPreset(t, "tiny")
	f := readBack(t, writeBytes(t, c))

	// llama.cpp's get_key is strict about types, so they are checked too.
	wantKVs := []struct {
		key string
		typ gguf.ValueType
		val any
	}{
		{"general.architecture", gguf.ValueString, "llama"},
		{"general.name", gguf.ValueString, "lumen-synth-tiny"},
		{"general.file_type", gguf.ValueUint32, uint32(0)},
		{"llama.context_length", gguf.ValueUint32, uint32(512)},
		{"llama.embedding_length", gguf.ValueUint32, uint32(64)},
		{"llama.block_count", gguf.ValueUint32, uint32(2)},
		{"llama.feed_forward_length", gguf.ValueUint32, uint32(128)},
		{"llama.attention.head_count", gguf.ValueUint32, uint32(4)},
		{"llama.attention.head_count_kv", gguf.ValueUint32, uint32(2)},
		{"llama.rope.dimension_count", gguf.ValueUint32, uint32(16)},
		{"llama.rope.freq_base", gguf.ValueFloat32, float32(10000)},
		{"llama.attention.layer_norm_rms_epsilon", gguf.ValueFloat32, float32(1e-5)},
		{"llama.vocab_size", gguf.ValueUint32, uint32(512)},
		{"tokenizer.ggml.model", gguf.ValueString, "llama"},
		{"tokenizer.ggml.bos_token_id", gguf.ValueUint32, uint32(1)},
		{"tokenizer.ggml.eos_token_id", gguf.ValueUint32, uint32(2)},
		{"tokenizer.ggml.unknown_token_id", gguf.ValueUint32, uint32(0)},
		{"tokenizer.ggml.add_bos_token", gguf.ValueBool, true},
		{"tokenizer.ggml.add_eos_token", gguf.ValueBool, false},
		{"tokenizer.chat_template", gguf.ValueString, ChatTemplate},
	}
	for _, w := range wantKVs {
		kv, ok := f.Lookup(w.key)
		if !ok || kv.Type != w.typ || kv.Value != w.val {
			t.Errorf("%s: have %v %#v (present %v), want %v %#v", w.key, kv.Type, kv.Value, ok, w.typ, w.val)
		}
	}
	for key, n := range map[string]int{"tokenizer.ggml.tokens": 512, "tokenizer.ggml.scores": 512, "tokenizer.ggml.token_type": 512} {
		if have, _ := f.ArrayLen(key); have != n {
			t.Errorf("%s: have %d elements, want %d", key, have, n)
		}
	}
	if _, ok := f.Float32s("tokenizer.ggml.scores"); !ok {
		t.Errorf("scores are not []float32")
	}
	if _, ok := f.Int32s("tokenizer.ggml.token_type"); !ok {
		t.Errorf("token types are not []int32")
	}

	type tensor struct {
		name string
		typ  gguf.GGMLType
		dims []uint64
	}
	want := []tensor{{"token_embd.weight", gguf.TypeF32, []uint64{64, 512}}}
	for i := range 2 {
		b := func(s string) string { return fmt.Sprintf("blk.%d.%s.weight", i, s) }
		want = append(want,
			tensor{b("attn_norm"), gguf.TypeF32, []uint64{64}},
			tensor{b("attn_q"), gguf.TypeF32, []uint64{64, 64}},
			tensor{b("attn_k"), gguf.TypeF32, []uint64{64, 32}},
			tensor{b("attn_v"), gguf.TypeF32, []uint64{64, 32}},
			tensor{b("attn_output"), gguf.TypeF32, []uint64{64, 64}},
			tensor{b("ffn_norm"), gguf.TypeF32, []uint64{64}},
			tensor{b("ffn_gate"), gguf.TypeF32, []uint64{64, 128}},
			tensor{b("ffn_down"), gguf.TypeF32, []uint64{128, 64}},
			tensor{b("ffn_up"), gguf.TypeF32, []uint64{64, 128}},
		)
	}
	want = append(want,
		tensor{"output_norm.weight", gguf.TypeF32, []uint64{64}},
		tensor{"output.weight", gguf.TypeF32, []uint64{64, 512}},
	)
	var have []tensor
	for _, ti := range f.Tensors {
		have = append(have, tensor{ti.Name, ti.Type, ti.Dims})
	}
	if !reflect.DeepEqual(have, want) {
		t.Errorf("tensors:\nhave %v\nwant %v", have, want)
	}
	if have, want := f.ParamCount(), c.ParamCount(); have != want {
		t.Errorf("ParamCount: file %d, config %d", have, want)
	}
}

// decodeTensor returns a tensor's values as float32.
func decodeTensor(t *testing.T, b []byte, f *gguf.File, name string) []float32 {
	t.Helper()
	ti, ok := f.Tensor(name)
	if !ok {
		t.Fatalf("no tensor %s", name)
	}
	raw := b[f.DataOffset+int64(ti.Offset):][:ti.Size]
	switch ti.Type {
	case gguf.TypeF32:
		out := make([]float32, len(raw)/4)
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
		return out
	case gguf.TypeF16:
		out := make([]float32, len(raw)/2)
		for i := range out {
			out[i] = F16ToF32(binary.LittleEndian.Uint16(raw[2*i:]))
		}
		return out
	case gguf.TypeQ8_0:
		return DequantizeQ8_0(raw)
	}
	t.Fatalf("tensor %s has type %s", name, ti.Type)
	return nil
}

func TestWriteWeightTypes(t *testing.T) {
	tests := []struct {
		typ      gguf.GGMLType
		fileType uint32
	}{
		{gguf.TypeF32, 0},
		{gguf.TypeF16, 1},
		{gguf.TypeQ8_0, 7},
	}
	for _, tt := range tests {
		t.Run(tt.typ.String(), func(t *testing.T) {
			c := mustPreset(t, "tiny")
			c.Type = tt.typ
			b := writeBytes(t, c)
			f := readBack(t, b)
			if ft, _ := f.Uint("general.file_type"); ft != uint64(tt.fileType) {
				t.Errorf("file_type: have %d, want %d", ft, tt.fileType)
			}
			for _, ti := range f.Tensors {
				want := tt.typ
				if len(ti.Dims) == 1 {
					want = gguf.TypeF32 // norms
				}
				if ti.Type != want {
					t.Errorf("%s: have %s, want %s", ti.Name, ti.Type, want)
				}
			}
			// Weights are uniform with std 0.02; norms are exactly 1.
			x := decodeTensor(t, b, f, "blk.0.attn_q.weight")
			var sum, sq float64
			for _, v := range x {
				sum += float64(v)
				sq += float64(v) * float64(v)
			}
			mean, std := sum/float64(len(x)), math.Sqrt(sq/float64(len(x)))
			if math.Abs(mean) > 0.002 || math.Abs(std-weightStd) > 0.002 {
				t.Errorf("attn_q: mean %.4f std %.4f, want 0 and %.3f", mean, std, weightStd)
			}
			for _, v := range decodeTensor(t, b, f, "output_norm.weight") {
				if v != 1 {
					t.Fatalf("output_norm value %g, want 1", v)
				}
			}
		})
	}
}

func TestWriteDeterministic(t *testing.T) {
	c := mustPreset(t, "tiny")
	a, b := writeBytes(t, c), writeBytes(t, c)
	if !bytes.Equal(a, b) {
		t.Errorf("same config wrote different bytes")
	}
	c.Seed++
	d := writeBytes(t, c)
	if len(d) != len(a) {
		t.Fatalf("seed changed the file size: %d vs %d", len(d), len(a))
	}
	if bytes.Equal(a, d) {
		t.Errorf("different seeds wrote identical bytes")
	}
}

func TestWriteRejectsInvalidConfig(t *testing.T) {
	c := mustPreset(t, "tiny")
	c.Heads = 3
	if err := Write(io.Discard, c); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("have %v, want ErrInvalidConfig", err)
	}
}

func TestWriteFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tiny.gguf")
	c := mustPreset(t, "tiny")
	var calls int
	var lastDone, lastTotal int64
	err := WriteFile(path, c, func(done, total int64) {
		if done < lastDone || done > total {
			t.Errorf("progress went from %d to %d of %d", lastDone, done, total)
		}
		calls++
		lastDone, lastTotal = done, total
	})
	if err != nil {
		t.Fatal(err)
	}
	f, err := gguf.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if calls == 0 || lastDone != lastTotal || uint64(lastTotal) != f.TensorDataSize() {
		t.Errorf("progress: %d calls, last %d/%d, want total %d", calls, lastDone, lastTotal, f.TensorDataSize())
	}
	assertDirHolds(t, dir, "tiny.gguf")
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o644 {
		t.Errorf("mode: have %v %v, want 0644", st.Mode(), err)
	}
}

// failAfter fails every write once n bytes have gone through.
type failAfter struct {
	w io.Writer
	n int
}

var errDiskFull = errors.New("disk full")

func (f *failAfter) Write(p []byte) (int, error) {
	if len(p) > f.n {
		return 0, errDiskFull
	}
	f.n -= len(p)
	return f.w.Write(p)
}

func TestWriteFileFailureLeavesNothing(t *testing.T) {
	tests := []struct {
		name     string
		existing []byte // content at the target before the write, nil for none
		cfg      func(*Config)
		failAt   int
		want     error
	}{
		{"fill fails, no previous file", nil, nil, 5000, errDiskFull},
		{"fill fails, previous file kept", []byte("old model"), nil, 5000, errDiskFull},
		{"header write fails", nil, nil, 10, errDiskFull},
		{"invalid config", []byte("old model"), func(c *Config) { c.Vocab = 1 }, 1 << 30, ErrInvalidConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "m.gguf")
			if tt.existing != nil {
				if err := os.WriteFile(path, tt.existing, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			c := mustPreset(t, "tiny")
			if tt.cfg != nil {
				tt.cfg(&c)
			}
			wrap := func(w io.Writer) io.Writer { return &failAfter{w: w, n: tt.failAt} }
			if err := writeFile(path, c, nil, wrap); !errors.Is(err, tt.want) {
				t.Fatalf("have %v, want %v", err, tt.want)
			}
			have, err := os.ReadFile(path)
			switch {
			case tt.existing == nil && !errors.Is(err, os.ErrNotExist):
				t.Errorf("target exists after failure (%v)", err)
			case tt.existing != nil && !bytes.Equal(have, tt.existing):
				t.Errorf("target changed: have %q, want %q", have, tt.existing)
			}
			if tt.existing != nil {
				assertDirHolds(t, dir, "m.gguf")
			} else {
				assertDirHolds(t, dir)
			}
		})
	}
}

func assertDirHolds(t *testing.T, dir string, names ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var have []string
	for _, e := range ents {
		have = append(have, e.Name())
	}
	if len(have) != len(names) || (len(names) > 0 && !reflect.DeepEqual(have, names)) {
		t.Errorf("directory holds %q, want %q", have, names)
	}
}

// TestTinyGreedyWalksCycle runs the tiny model's forward pass in Go for a
// single token at position 0 (where attention reduces to the V projection)
// for every token, and checks the property the weights are built for: the
// greedy successor of a NORMAL token is its successor in one cycle through
// all NORMAL tokens, and no token's greedy successor is a special or byte
// token, so greedy decoding never collapses onto one token.
func TestTinyGreedyWalksCycle(t *testing.T) {
	c := mustPreset(t, "tiny")
	b := writeBytes(t, c)
	f := readBack(t, b)
	w := func(name string) []float32 { return decodeTensor(t, b, f, name) }
	embd, ff, kv, hd := c.Embd, c.FF, c.KVDim(), c.HeadDim()
	group := c.Heads / c.KVHeads

	matvec := func(m []float32, in, out int, x []float32) []float32 {
		y := make([]float32, out)
		for o := range out {
			var s float32
			for i, v := range m[o*in : (o+1)*in] {
				s += v * x[i]
			}
			y[o] = s
		}
		return y
	}
	rmsnorm := func(x, g []float32) []float32 {
		var ss float32
		for _, v := range x {
			ss += v * v
		}
		r := float32(1 / math.Sqrt(float64(ss/float32(len(x))+c.NormEps)))
		y := make([]float32, len(x))
		for i := range x {
			y[i] = x[i] * r * g[i]
		}
		return y
	}
	tokEmbd, outNorm, out := w("token_embd.weight"), w("output_norm.weight"), w("output.weight")
	type layer struct{ attnNorm, wv, wo, ffnNorm, gate, down, up []float32 }
	layers := make([]layer, c.Layers)
	for i := range layers {
		n := func(s string) []float32 { return w(fmt.Sprintf("blk.%d.%s.weight", i, s)) }
		layers[i] = layer{n("attn_norm"), n("attn_v"), n("attn_output"), n("ffn_norm"), n("ffn_gate"), n("ffn_down"), n("ffn_up")}
	}

	greedy := make([]int, c.Vocab)
	var spread float64
	for tok := range c.Vocab {
		x := append([]float32(nil), tokEmbd[tok*embd:(tok+1)*embd]...)
		for _, l := range layers {
			v := matvec(l.wv, embd, kv, rmsnorm(x, l.attnNorm))
			att := make([]float32, embd)
			for h := range c.Heads {
				copy(att[h*hd:(h+1)*hd], v[(h/group)*hd:])
			}
			for i, d := range matvec(l.wo, embd, embd, att) {
				x[i] += d
			}
			xn := rmsnorm(x, l.ffnNorm)
			g, u := matvec(l.gate, embd, ff, xn), matvec(l.up, embd, ff, xn)
			for i := range g {
				g[i] = g[i] / (1 + float32(math.Exp(float64(-g[i])))) * u[i]
			}
			for i, d := range matvec(l.down, ff, embd, g) {
				x[i] += d
			}
		}
		logits := matvec(out, embd, c.Vocab, rmsnorm(x, outNorm))
		best, lo := 0, logits[0]
		for i, v := range logits {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				t.Fatalf("token %d: logit %d is %g", tok, i, v)
			}
			if v > logits[best] {
				best = i
			}
			lo = min(lo, v)
		}
		greedy[tok] = best
		spread += float64(logits[best] - lo)
		if best < firstNormal {
			t.Errorf("greedy successor of %d is non-NORMAL token %d", tok, best)
		}
	}
	// Walk from the first NORMAL token: the walk must come back only after
	// visiting every NORMAL token.
	seen := make(map[int]bool)
	for tok := firstNormal; !seen[tok]; tok = greedy[tok] {
		seen[tok] = true
	}
	if have, want := len(seen), c.Vocab-firstNormal; have != want {
		t.Errorf("greedy cycle visits %d tokens, want all %d NORMAL tokens", have, want)
	}
	if mean := spread / float64(c.Vocab); mean < 5 {
		t.Errorf("mean logit range %.2f: distribution is nearly flat", mean)
	}
}
