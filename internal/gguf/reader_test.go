package gguf

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
)

func readBytes(b []byte, lim Limits) (*File, error) {
	return Read(bytes.NewReader(b), int64(len(b)), lim)
}

func TestReadValid(t *testing.T) {
	b := validRaw().build()
	f, err := readBytes(b, DefaultLimits())
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if f.Version != 3 || f.Alignment != 32 || f.Size != int64(len(b)) {
		t.Errorf("have version %d alignment %d size %d, want 3 32 %d", f.Version, f.Alignment, f.Size, len(b))
	}
	if have, want := f.Architecture(), "llama"; have != want {
		t.Errorf("Architecture: have %q, want %q", have, want)
	}
	if have, want := f.ParamCount(), uint64(24); have != want {
		t.Errorf("ParamCount: have %d, want %d", have, want)
	}
	if have, want := f.TensorDataSize(), uint64(96); have != want {
		t.Errorf("TensorDataSize: have %d, want %d", have, want)
	}
	if have, want := f.DataOffset%32, int64(0); have != want {
		t.Errorf("DataOffset %d not aligned", f.DataOffset)
	}
	if have, want := f.DataOffset+96, int64(len(b)); have != want {
		t.Errorf("DataOffset+96: have %d, want %d", have, want)
	}
}

func TestReadAcceptsEdgeCases(t *testing.T) {
	tests := []struct {
		name string
		file rawFile
	}{
		{"version 2", func() rawFile { f := validRaw(); f.version = 2; return f }()},
		{"empty file body", rawFile{}},
		{"no tensors and no padding", rawFile{kvs: []rawKV{{"a", 0, []byte{1}}}, align: 1}},
		{"alignment 64", rawFile{
			kvs:     []rawKV{{AlignmentKey, 4, le32(64)}},
			tensors: []rawTensor{{"t", []uint64{4}, 0, 0}, {"u", []uint64{4}, 0, 64}},
			align:   64, dataLen: 80,
		}},
		{"gap between tensors", rawFile{
			tensors: []rawTensor{{"t", []uint64{4}, 0, 64}, {"u", []uint64{4}, 0, 0}},
			dataLen: 80,
		}},
		{"4-D Q8_0", rawFile{tensors: []rawTensor{{"q", []uint64{32, 1, 2, 1}, 8, 0}}, dataLen: 68}},
		{"empty array", rawFile{kvs: []rawKV{{"x", 9, arr(8, 0)}}}},
		{"invalid UTF-8 string value", rawFile{kvs: []rawKV{{"x", 8, gstr("\xff")}}}},
		{"63-byte tensor name", rawFile{tensors: []rawTensor{{strings.Repeat("n", 63), []uint64{1}, 0, 0}}, dataLen: 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := readBytes(tt.file.build(), DefaultLimits()); err != nil {
				t.Errorf("have %v, want nil", err)
			}
		})
	}
}

func TestReadRejects(t *testing.T) {
	withKVs := func(kvs ...rawKV) rawFile { return rawFile{kvs: kvs} }
	withTensors := func(dataLen int, ts ...rawTensor) rawFile { return rawFile{tensors: ts, dataLen: dataLen} }
	small := Limits{MaxStringLen: 10, MaxArrayLen: 10, MaxKVs: 2, MaxTensors: 2, MaxHeaderBytes: 64}
	tests := []struct {
		name string
		file []byte
		lim  Limits
		want error
	}{
		{"empty", nil, Limits{}, ErrTruncated},
		{"bad magic", rawFile{magic: "GGUX"}.build(), Limits{}, ErrBadMagic},
		{"version 1", rawFile{version: 1}.build(), Limits{}, ErrUnsupportedVersion},
		{"version 99", rawFile{version: 99}.build(), Limits{}, ErrUnsupportedVersion},
		{"big-endian version 3", rawFile{version: 3 << 24}.build(), Limits{}, ErrUnsupportedVersion},
		{"huge kv count", rawFile{nKVs: ptr(1 << 62)}.build(), Limits{}, ErrLimit},
		{"kv count beyond file", rawFile{nKVs: ptr(1000)}.build(), Limits{}, ErrLimit},
		{"kv count over limit", withKVs(rawKV{"a", 0, []byte{1}}, rawKV{"b", 0, []byte{1}}, rawKV{"c", 0, []byte{1}}).build(), small, ErrLimit},
		{"huge tensor count", rawFile{nTensors: ptr(1 << 62)}.build(), Limits{}, ErrLimit},
		{"tensor count beyond file", rawFile{nTensors: ptr(1000)}.build(), Limits{}, ErrLimit},
		{"huge key length", cat(head(0, 1), le64(1<<62), make([]byte, 20)), Limits{}, ErrLimit},
		{"key length beyond file", cat(head(0, 1), le64(100), []byte("abc"), make([]byte, 20)), Limits{}, ErrLimit},
		{"key longer than 65535", withKVs(rawKV{strings.Repeat("k", 1<<16), 0, []byte{1}}).build(), Limits{}, ErrLimit},
		{"huge string value", withKVs(rawKV{"s", 8, le64(1 << 40)}).build(), Limits{}, ErrLimit},
		{"string over limit", withKVs(rawKV{"s", 8, gstr("01234567890")}).build(), small, ErrLimit},
		{"huge array count", withKVs(rawKV{"a", 9, arr(0, 1<<40)}).build(), Limits{}, ErrLimit},
		{"array count beyond file", withKVs(rawKV{"a", 9, arr(10, 1000)}).build(), Limits{}, ErrLimit},
		{"string array count beyond file", withKVs(rawKV{"a", 9, arr(8, 1000, gstr("x"))}).build(), Limits{}, ErrLimit},
		{"array over limit", withKVs(rawKV{"a", 9, arr(0, 11, make([]byte, 11))}).build(), small, ErrLimit},
		{"header over MaxHeaderBytes", withKVs(rawKV{"a", 9, arr(0, 10, make([]byte, 10))}, rawKV{"b", 9, arr(0, 10, make([]byte, 10))}).build(), small, ErrLimit},
		{"empty key", withKVs(rawKV{"", 0, []byte{1}}).build(), Limits{}, ErrBadString},
		{"invalid UTF-8 key", withKVs(rawKV{"bad\xffkey", 0, []byte{1}}).build(), Limits{}, ErrBadString},
		{"NUL in key", withKVs(rawKV{"a\x00b", 0, []byte{1}}).build(), Limits{}, ErrBadString},
		{"duplicate key", withKVs(rawKV{"a", 0, []byte{1}}, rawKV{"a", 0, []byte{2}}).build(), Limits{}, ErrDuplicate},
		{"value type 13", withKVs(rawKV{"a", 13, []byte{1}}).build(), Limits{}, ErrValueType},
		{"value type 2^32-1", withKVs(rawKV{"a", 0xffffffff, []byte{1}}).build(), Limits{}, ErrValueType},
		{"array of type 13", withKVs(rawKV{"a", 9, arr(13, 1, []byte{1})}).build(), Limits{}, ErrValueType},
		{"nested array", withKVs(rawKV{"a", 9, arr(9, 1, arr(0, 1, []byte{1}))}).build(), Limits{}, ErrValueType},
		{"bool 7", withKVs(rawKV{"b", 7, []byte{7}}).build(), Limits{}, ErrBadValue},
		{"bool array with 2", withKVs(rawKV{"b", 9, arr(7, 3, []byte{0, 1, 2})}).build(), Limits{}, ErrBadValue},
		{"alignment 0", withKVs(rawKV{AlignmentKey, 4, le32(0)}).build(), Limits{}, ErrAlignment},
		{"alignment 3", withKVs(rawKV{AlignmentKey, 4, le32(3)}).build(), Limits{}, ErrAlignment},
		{"alignment as uint64", withKVs(rawKV{AlignmentKey, 10, le64(32)}).build(), Limits{}, ErrAlignment},
		{"tokens not strings", withKVs(rawKV{keyTokens, 9, arr(5, 1, le32(1))}).build(), Limits{}, ErrMetadata},
		{"duplicate tokens", withKVs(rawKV{keyTokens, 9, arr(8, 2, gstr("a"), gstr("a"))}).build(), Limits{}, ErrMetadata},
		{"fewer scores than tokens", withKVs(
			rawKV{keyTokens, 9, arr(8, 2, gstr("a"), gstr("b"))},
			rawKV{keyScores, 9, arr(6, 1, f32(0))}).build(), Limits{}, ErrMetadata},
		{"token types as uint8", withKVs(
			rawKV{keyTokens, 9, arr(8, 1, gstr("a"))},
			rawKV{keyTokenType, 9, arr(0, 1, []byte{1})}).build(), Limits{}, ErrMetadata},
		{"merges not strings", withKVs(rawKV{keyMerges, 8, gstr("a b")}).build(), Limits{}, ErrMetadata},
		{"empty tensor name", withTensors(4, rawTensor{"", []uint64{1}, 0, 0}).build(), Limits{}, ErrBadString},
		{"invalid UTF-8 tensor name", withTensors(4, rawTensor{"\xc3", []uint64{1}, 0, 0}).build(), Limits{}, ErrBadString},
		{"64-byte tensor name", withTensors(4, rawTensor{strings.Repeat("n", 64), []uint64{1}, 0, 0}).build(), Limits{}, ErrBadString},
		{"duplicate tensor name", withTensors(64, rawTensor{"t", []uint64{1}, 0, 0}, rawTensor{"t", []uint64{1}, 0, 32}).build(), Limits{}, ErrDuplicate},
		{"n_dims 0", withTensors(4, rawTensor{"t", nil, 0, 0}).build(), Limits{}, ErrShape},
		{"n_dims 5", withTensors(4, rawTensor{"t", []uint64{1, 1, 1, 1, 1}, 0, 0}).build(), Limits{}, ErrShape},
		{"zero dim", withTensors(4, rawTensor{"t", []uint64{4, 0}, 0, 0}).build(), Limits{}, ErrShape},
		{"Q8_0 row of 16", withTensors(34, rawTensor{"t", []uint64{16, 2}, 8, 0}).build(), Limits{}, ErrShape},
		{"Q4_K row of 32", withTensors(144, rawTensor{"t", []uint64{32}, 12, 0}).build(), Limits{}, ErrShape},
		{"element count overflows", withTensors(4, rawTensor{"t", []uint64{1 << 32, 1 << 32}, 0, 0}).build(), Limits{}, ErrShapeOverflow},
		{"negative dim", withTensors(4, rawTensor{"t", []uint64{1 << 63}, 0, 0}).build(), Limits{}, ErrShapeOverflow},
		{"byte count overflows", withTensors(4, rawTensor{"t", []uint64{1 << 31, 1 << 30}, 0, 0}).build(), Limits{}, ErrShapeOverflow},
		{"tensor type 4", withTensors(4, rawTensor{"t", []uint64{1}, 4, 0}).build(), Limits{}, ErrTensorType},
		{"tensor type 200", withTensors(4, rawTensor{"t", []uint64{1}, 200, 0}).build(), Limits{}, ErrTensorType},
		{"offset misaligned", withTensors(40, rawTensor{"t", []uint64{1}, 0, 8}).build(), Limits{}, ErrAlignment},
		{"offset past EOF", withTensors(4, rawTensor{"t", []uint64{1}, 0, 1 << 20}).build(), Limits{}, ErrOutOfBounds},
		{"offset near 2^64", withTensors(4, rawTensor{"t", []uint64{1}, 0, 1<<64 - 32}).build(), Limits{}, ErrOutOfBounds},
		{"size past EOF", withTensors(15, rawTensor{"t", []uint64{4}, 0, 0}).build(), Limits{}, ErrOutOfBounds},
		{"no data section", rawFile{tensors: []rawTensor{{"t", []uint64{1}, 0, 0}}, align: 1}.build(), Limits{}, ErrOutOfBounds},
		{"overlapping tensors", withTensors(64, rawTensor{"t", []uint64{16}, 0, 0}, rawTensor{"u", []uint64{4}, 0, 32}).build(), Limits{}, ErrOverlap},
		{"same offset", withTensors(64, rawTensor{"t", []uint64{1}, 0, 0}, rawTensor{"u", []uint64{1}, 0, 0}).build(), Limits{}, ErrOverlap},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := readBytes(tt.file, tt.lim)
			if !errors.Is(err, tt.want) {
				t.Fatalf("have %v, want %v", err, tt.want)
			}
			if f != nil {
				t.Errorf("have a File along with the error")
			}
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("have %T, want *FormatError", err)
			}
			if fe.Offset < 0 || fe.Offset > int64(len(tt.file)) {
				t.Errorf("offset %d outside the %d-byte file", fe.Offset, len(tt.file))
			}
		})
	}
}

// Every proper prefix of a valid file is invalid: the reader must say so
// cleanly, whichever field the cut lands in.
func TestReadEveryPrefix(t *testing.T) {
	full := validRaw().build()
	for n := range len(full) {
		_, err := readBytes(full[:n], DefaultLimits())
		if !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrLimit) && !errors.Is(err, ErrOutOfBounds) {
			t.Errorf("prefix of %d bytes: have %v, want ErrTruncated, ErrLimit or ErrOutOfBounds", n, err)
		}
	}
}

func TestFormatErrorMessage(t *testing.T) {
	b := rawFile{tensors: []rawTensor{{"blk.0.attn_q.weight", []uint64{1 << 40, 1 << 40}, 0, 0}}, dataLen: 4}.build()
	_, err := readBytes(b, DefaultLimits())
	// magic+version+counts (24) + name (8+19) + n_dims (4) = 55.
	want := `gguf: tensor "blk.0.attn_q.weight" dims at offset 55: tensor shape overflows`
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("have %v, want prefix %q", err, want)
	}
}

type failingReaderAt struct{ err error }

func (r failingReaderAt) ReadAt([]byte, int64) (int, error) { return 0, r.err }

func TestReadPropagatesIOError(t *testing.T) {
	boom := errors.New("disk on fire")
	_, err := Read(failingReaderAt{boom}, 1000, DefaultLimits())
	if !errors.Is(err, boom) {
		t.Errorf("have %v, want wrapped %v", err, boom)
	}
}

func TestReadShortReader(t *testing.T) {
	b := validRaw().build()
	// The reader holds fewer bytes than the size claimed.
	_, err := Read(bytes.NewReader(b[:30]), int64(len(b)), DefaultLimits())
	if !errors.Is(err, ErrTruncated) {
		t.Errorf("have %v, want ErrTruncated", err)
	}
}

func TestGetters(t *testing.T) {
	f := &File{KVs: []KV{
		{"u8", ValueUint8, uint8(7)},
		{"i8neg", ValueInt8, int8(-1)},
		{"i32", ValueInt32, int32(5)},
		{"u64big", ValueUint64, uint64(1 << 63)},
		{"f32", ValueFloat32, float32(1.5)},
		{"s", ValueString, "x"},
		{"b", ValueBool, true},
		{"ss", ValueArray, []string{"a", "b"}},
		{"fs", ValueArray, []float32{1, 2, 3}},
		{"is", ValueArray, []int32{1}},
	}}
	type res struct {
		v  any
		ok bool
	}
	two := func(v any, ok bool) res { return res{v, ok} }
	tests := []struct {
		name string
		have res
		want res
	}{
		{"Uint u8", two(f.Uint("u8")), res{uint64(7), true}},
		{"Uint negative", two(f.Uint("i8neg")), res{uint64(0), false}},
		{"Uint int32", two(f.Uint("i32")), res{uint64(5), true}},
		{"Uint string", two(f.Uint("s")), res{uint64(0), false}},
		{"Uint missing", two(f.Uint("nope")), res{uint64(0), false}},
		{"Int negative", two(f.Int("i8neg")), res{int64(-1), true}},
		{"Int too big", two(f.Int("u64big")), res{int64(0), false}},
		{"Float", two(f.Float("f32")), res{1.5, true}},
		{"Float of int", two(f.Float("u8")), res{0.0, false}},
		{"String", two(f.String("s")), res{"x", true}},
		{"Bool", two(f.Bool("b")), res{true, true}},
		{"ArrayLen strings", two(f.ArrayLen("ss")), res{2, true}},
		{"ArrayLen floats", two(f.ArrayLen("fs")), res{3, true}},
		{"ArrayLen scalar", two(f.ArrayLen("s")), res{0, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.have != tt.want {
				t.Errorf("have %v, want %v", tt.have, tt.want)
			}
		})
	}
	if s, ok := f.Strings("ss"); !ok || len(s) != 2 {
		t.Errorf("Strings: have %v %v", s, ok)
	}
	if s, ok := f.Float32s("fs"); !ok || len(s) != 3 {
		t.Errorf("Float32s: have %v %v", s, ok)
	}
	if s, ok := f.Int32s("is"); !ok || len(s) != 1 {
		t.Errorf("Int32s: have %v %v", s, ok)
	}
}

func TestGGMLType(t *testing.T) {
	tests := []struct {
		typ         GGMLType
		name        string
		block, size uint64
		valid       bool
	}{
		{TypeF32, "F32", 1, 4, true},
		{TypeF16, "F16", 1, 2, true},
		{TypeQ4_0, "Q4_0", 32, 18, true},
		{TypeQ8_0, "Q8_0", 32, 34, true},
		{TypeQ6_K, "Q6_K", 256, 210, true},
		{TypeIQ4_NL, "IQ4_NL", 32, 18, true},
		{TypeBF16, "BF16", 1, 2, true},
		{TypeTQ2_0, "TQ2_0", 256, 66, true},
		{TypeMXFP4, "MXFP4", 32, 17, true},
		{4, "GGMLType(4)", 0, 0, false},
		{31, "GGMLType(31)", 0, 0, false},
		{36, "GGMLType(36)", 0, 0, false},
		{40, "GGMLType(40)", 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			have := []any{tt.typ.String(), tt.typ.BlockSize(), tt.typ.TypeSize(), tt.typ.Valid()}
			want := []any{tt.name, tt.block, tt.size, tt.valid}
			for i := range have {
				if have[i] != want[i] {
					t.Errorf("have %v, want %v", have, want)
					break
				}
			}
			if !tt.valid {
				return
			}
			parsed, err := ParseType(strings.ToLower(tt.name))
			if err != nil || parsed != tt.typ {
				t.Errorf("ParseType(%q): have %v %v, want %v", strings.ToLower(tt.name), parsed, err, tt.typ)
			}
		})
	}
	if _, err := ParseType("Q4_2"); !errors.Is(err, ErrTensorType) {
		t.Errorf("ParseType(Q4_2): have %v, want ErrTensorType", err)
	}
}

// testModel is the Llama-2 test model committed in testdata/models.
const testModel = "../../testdata/models/llama-2-tiny-random.gguf"

// The committed test model is the file its README names.
func TestCommittedTestModel(t *testing.T) {
	b, err := os.ReadFile(testModel)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprintf("%x", sha256.Sum256(b)), "81f226c62d28ed4a1a9b9fa080fcd9f0cc40e0f9d5680036583ff98fbcd035cb"; got != want {
		t.Errorf("%s: sha256 %s, want %s (testdata/models/README.md)", testModel, got, want)
	}
}

func TestReadTinyRandomModel(t *testing.T) {
	f, err := ReadFile(testModel)
	if err != nil {
		t.Fatalf("ReadFile: %v", err)
	}
	if have, want := f.Architecture(), "llama"; have != want {
		t.Errorf("Architecture: have %q, want %q", have, want)
	}
	if have, ok := f.ArrayLen("tokenizer.ggml.tokens"); !ok || have != 32000 {
		t.Errorf("tokenizer.ggml.tokens: have %d (%v), want 32000", have, ok)
	}
	if len(f.Tensors) == 0 || f.ParamCount() == 0 {
		t.Errorf("have %d tensors, %d params", len(f.Tensors), f.ParamCount())
	}
}
