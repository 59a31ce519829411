package gguf

import (
	"bufio"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"os"
	"slices"
	"strings"
	"unicode/utf8"
)

const (
	// magic is "GGUF" read as a little-endian uint32.
	magic = 0x46554747

	// DefaultAlignment is the data alignment used when general.alignment is
	// absent.
	DefaultAlignment = 32

	// AlignmentKey is the metadata key that overrides DefaultAlignment.
	AlignmentKey = "general.alignment"

	// MaxDims is ggml's GGML_MAX_DIMS.
	MaxDims = 4

	// MaxTensorNameLen is the longest tensor name ggml can hold:
	// GGML_MAX_NAME is 64 including the terminating NUL, and llama.cpp
	// rejects names of 64 bytes or more.
	MaxTensorNameLen = 63

	// maxKeyLen is the GGUF spec's bound on key length.
	maxKeyLen = 1<<16 - 1

	// maxElements bounds a tensor's element count. ggml requires the count
	// to stay below INT64_MAX; 2^62 leaves headroom for byte arithmetic.
	maxElements = 1 << 62

	// Minimum encoded sizes, used to reject counts that cannot fit in the
	// bytes left before anything is allocated for them.
	minKVSize     = 8 + 1 + 4 + 1         // 1-byte key, uint8 value
	minTensorSize = 8 + 1 + 4 + 8 + 4 + 8 // 1-byte name, one dim

	// arrayChunk is how many bytes of a numeric array are decoded at once.
	arrayChunk = 64 << 10
)

// Limits bounds what Read accepts, so the cost of parsing a hostile file is
// bounded. Each bound applies in addition to the file size: a count is also
// rejected when its minimum encoding would not fit in the bytes left. A zero
// field means the DefaultLimits value, so Limits{} is safe to pass.
type Limits struct {
	MaxKVs       uint64 // metadata key/value pairs
	MaxTensors   uint64 // tensor infos
	MaxStringLen uint64 // bytes in one string value (keys: at most 65535)
	MaxArrayLen  uint64 // elements in one array value
	// MaxHeaderBytes bounds the size of everything before the data section
	// (magic through the last tensor info), which bounds total allocation.
	MaxHeaderBytes uint64
}

// DefaultLimits returns bounds that real models sit far inside: a 256k-token
// vocabulary with its merges is under 16M array elements and tens of MB of
// header, and chat templates are well under 16 MiB.
func DefaultLimits() Limits {
	return Limits{
		MaxKVs:         1 << 16,
		MaxTensors:     1 << 16,
		MaxStringLen:   16 << 20,
		MaxArrayLen:    16 << 20,
		MaxHeaderBytes: 1 << 30,
	}
}

func (l Limits) withDefaults() Limits {
	def := DefaultLimits()
	pick := func(v, d uint64) uint64 {
		if v == 0 {
			return d
		}
		return v
	}
	return Limits{
		MaxKVs:         pick(l.MaxKVs, def.MaxKVs),
		MaxTensors:     pick(l.MaxTensors, def.MaxTensors),
		MaxStringLen:   pick(l.MaxStringLen, def.MaxStringLen),
		MaxArrayLen:    pick(l.MaxArrayLen, def.MaxArrayLen),
		MaxHeaderBytes: pick(l.MaxHeaderBytes, def.MaxHeaderBytes),
	}
}

// ReadFile opens path and validates it with DefaultLimits.
func ReadFile(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("gguf: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("gguf: %w", err)
	}
	file, err := Read(f, st.Size(), DefaultLimits())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return file, nil
}

// Read parses and validates the GGUF file of the given size held by r. On
// success every tensor's data lies inside the file, is aligned, and overlaps
// no other tensor. A validation failure is a *FormatError; an I/O failure
// from r is returned wrapped.
func Read(r io.ReaderAt, size int64, lim Limits) (*File, error) {
	if size < 0 {
		return nil, fmt.Errorf("gguf: negative file size %d: %w", size, ErrTruncated)
	}
	lim = lim.withDefaults()
	end := size
	if lim.MaxHeaderBytes < uint64(size) {
		end = int64(lim.MaxHeaderBytes)
	}
	// The buffer need not exceed the file: fuzzing calls Read on tiny inputs
	// millions of times.
	bufSize := int64(1 << 20)
	if size < bufSize {
		bufSize = max(size, 16)
	}
	d := &decoder{
		br:   bufio.NewReaderSize(io.NewSectionReader(r, 0, size), int(bufSize)),
		size: size,
		end:  end,
		lim:  lim,
	}
	return d.file()
}

// decoder reads a GGUF header sequentially, tracking the file offset so every
// error can say where it happened.
type decoder struct {
	br      *bufio.Reader
	off     int64 // bytes consumed so far
	size    int64 // file size
	end     int64 // min(size, MaxHeaderBytes): header reads stop here
	lim     Limits
	scratch [8]byte
	chunk   []byte
}

func (d *decoder) fail(off int64, field string, sentinel error, format string, args ...any) error {
	return &FormatError{Offset: off, Field: field, Err: sentinel, Detail: fmt.Sprintf(format, args...)}
}

// left is the number of header bytes that may still be read.
func (d *decoder) left() uint64 { return uint64(d.end - d.off) }

// overLeft builds the error for a field that needs more bytes than remain:
// truncation when the file ends, ErrLimit when MaxHeaderBytes does.
func (d *decoder) overLeft(field string, need uint64) error {
	if d.end < d.size {
		return d.fail(d.off, field, ErrLimit, "header would exceed MaxHeaderBytes (%d)", d.lim.MaxHeaderBytes)
	}
	return d.fail(d.off, field, ErrTruncated, "need %d bytes, %d left", need, d.size-d.off)
}

func (d *decoder) readFull(p []byte, field string) error {
	if uint64(len(p)) > d.left() {
		return d.overLeft(field, uint64(len(p)))
	}
	if _, err := io.ReadFull(d.br, p); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			// The reader ended before the size we were told.
			return d.fail(d.off, field, ErrTruncated, "reader ended early")
		}
		return fmt.Errorf("gguf: reading %s at offset %d: %w", field, d.off, err)
	}
	d.off += int64(len(p))
	return nil
}

func (d *decoder) u8(field string) (uint8, error) {
	err := d.readFull(d.scratch[:1], field)
	return d.scratch[0], err
}

func (d *decoder) u16(field string) (uint16, error) {
	err := d.readFull(d.scratch[:2], field)
	return binary.LittleEndian.Uint16(d.scratch[:2]), err
}

func (d *decoder) u32(field string) (uint32, error) {
	err := d.readFull(d.scratch[:4], field)
	return binary.LittleEndian.Uint32(d.scratch[:4]), err
}

func (d *decoder) u64(field string) (uint64, error) {
	err := d.readFull(d.scratch[:8], field)
	return binary.LittleEndian.Uint64(d.scratch[:8]), err
}

// count reads a u64 count of items each at least minSize bytes long and
// checks it against max and against the bytes left, before the caller
// allocates anything for it.
func (d *decoder) count(field string, max, minSize uint64) (uint64, error) {
	start := d.off
	n, err := d.u64(field)
	if err != nil {
		return 0, err
	}
	if n > max {
		return 0, d.fail(start, field, ErrLimit, "%d exceeds limit %d", n, max)
	}
	if minSize > 0 && n > d.left()/minSize {
		return 0, d.fail(start, field, ErrLimit, "%d items of at least %d bytes do not fit in the %d bytes left", n, minSize, d.left())
	}
	return n, nil
}

func (d *decoder) str(field string, maxLen uint64) (string, error) {
	// Inlined rather than count(field+" length", ...) so that reading a
	// vocabulary does not build a field name per token.
	start := d.off
	n, err := d.u64(field)
	if err != nil {
		return "", err
	}
	if n > maxLen {
		return "", d.fail(start, field+" length", ErrLimit, "%d exceeds limit %d", n, maxLen)
	}
	if n > d.left() {
		return "", d.fail(start, field+" length", ErrLimit, "%d bytes do not fit in the %d bytes left", n, d.left())
	}
	buf := make([]byte, n)
	if err := d.readFull(buf, field); err != nil {
		return "", err
	}
	return string(buf), nil
}

// checkName applies the rules shared by keys and tensor names: non-empty,
// UTF-8, no NUL (llama.cpp stores names as C strings, so "a\x00b" and "a"
// would collide after it parsed them).
func checkName(s string) string {
	switch {
	case s == "":
		return "empty"
	case !utf8.ValidString(s):
		return fmt.Sprintf("%q is not valid UTF-8", s)
	case strings.IndexByte(s, 0) >= 0:
		return fmt.Sprintf("%q contains a NUL byte", s)
	}
	return ""
}

func (d *decoder) file() (*File, error) {
	m, err := d.u32("magic")
	if err != nil {
		return nil, err
	}
	if m != magic {
		return nil, d.fail(0, "magic", ErrBadMagic, "got %q", d.scratch[:4])
	}
	version, err := d.u32("version")
	if err != nil {
		return nil, err
	}
	if version != 2 && version != 3 {
		return nil, d.fail(4, "version", ErrUnsupportedVersion, "version %d (want 2 or 3)", version)
	}
	nTensors, err := d.count("tensor count", d.lim.MaxTensors, 0)
	if err != nil {
		return nil, err
	}
	nKV, err := d.count("kv count", d.lim.MaxKVs, minKVSize)
	if err != nil {
		return nil, err
	}
	f := &File{Version: version, Size: d.size, Alignment: DefaultAlignment}
	kvOffsets, err := d.kvs(f, nKV)
	if err != nil {
		return nil, err
	}
	if err := checkAlignment(f, kvOffsets); err != nil {
		return nil, err
	}
	if err := checkTokenizer(f, kvOffsets); err != nil {
		return nil, err
	}
	// The tensor count is checked against the bytes left only now, after
	// the KVs, when the bytes left are known to hold only tensor infos.
	if nTensors > d.left()/minTensorSize {
		return nil, d.fail(16, "tensor count", ErrLimit, "%d tensor infos of at least %d bytes do not fit in the %d bytes left after metadata", nTensors, minTensorSize, d.left())
	}
	infoOffsets, err := d.tensors(f, nTensors)
	if err != nil {
		return nil, err
	}
	// DataOffset cannot overflow: off < 2^63 and Alignment <= 2^31.
	f.DataOffset = int64(alignUp(uint64(d.off), f.Alignment))
	if err := checkPlacement(f, infoOffsets); err != nil {
		return nil, err
	}
	return f, nil
}

func (d *decoder) kvs(f *File, n uint64) ([]int64, error) {
	f.KVs = make([]KV, 0, n)
	offsets := make([]int64, 0, n)
	seen := make(map[string]struct{}, n)
	for i := range n {
		start := d.off
		field := fmt.Sprintf("key #%d", i)
		key, err := d.str(field, min(d.lim.MaxStringLen, maxKeyLen))
		if err != nil {
			return nil, err
		}
		if why := checkName(key); why != "" {
			return nil, d.fail(start, field, ErrBadString, "key %s", why)
		}
		field = fmt.Sprintf("key %q", key)
		if _, dup := seen[key]; dup {
			return nil, d.fail(start, field, ErrDuplicate, "key appears twice")
		}
		seen[key] = struct{}{}
		typOff := d.off
		t, err := d.u32(field + " type")
		if err != nil {
			return nil, err
		}
		typ := ValueType(t)
		var val any
		switch {
		case typ == ValueArray:
			val, err = d.array(field)
		case typ.Valid():
			val, err = d.scalar(typ, field+" value")
		default:
			err = d.fail(typOff, field+" type", ErrValueType, "type %d", t)
		}
		if err != nil {
			return nil, err
		}
		f.KVs = append(f.KVs, KV{Key: key, Type: typ, Value: val})
		offsets = append(offsets, start)
	}
	return offsets, nil
}

func (d *decoder) scalar(t ValueType, field string) (any, error) {
	start := d.off
	switch t {
	case ValueUint8:
		return d.u8(field)
	case ValueInt8:
		v, err := d.u8(field)
		return int8(v), err
	case ValueUint16:
		return d.u16(field)
	case ValueInt16:
		v, err := d.u16(field)
		return int16(v), err
	case ValueUint32:
		return d.u32(field)
	case ValueInt32:
		v, err := d.u32(field)
		return int32(v), err
	case ValueFloat32:
		v, err := d.u32(field)
		return math.Float32frombits(v), err
	case ValueBool:
		v, err := d.u8(field)
		if err != nil {
			return nil, err
		}
		if v > 1 {
			return nil, d.fail(start, field, ErrBadValue, "bool byte is %d", v)
		}
		return v == 1, nil
	case ValueString:
		return d.str(field, d.lim.MaxStringLen)
	case ValueUint64:
		return d.u64(field)
	case ValueInt64:
		v, err := d.u64(field)
		return int64(v), err
	case ValueFloat64:
		v, err := d.u64(field)
		return math.Float64frombits(v), err
	}
	return nil, d.fail(start, field, ErrValueType, "type %d", uint32(t))
}

func (d *decoder) array(field string) (any, error) {
	typOff := d.off
	t, err := d.u32(field + " element type")
	if err != nil {
		return nil, err
	}
	et := ValueType(t)
	if et == ValueArray {
		// llama.cpp cannot represent nested arrays and rejects them too.
		return nil, d.fail(typOff, field+" element type", ErrValueType, "nested arrays are not supported")
	}
	if !et.Valid() {
		return nil, d.fail(typOff, field+" element type", ErrValueType, "type %d", t)
	}
	n, err := d.count(field+" array length", d.lim.MaxArrayLen, et.size())
	if err != nil {
		return nil, err
	}
	elem := field + " element"
	switch et {
	case ValueUint8:
		return numbers(d, n, 1, elem, func(b []byte) uint8 { return b[0] })
	case ValueInt8:
		return numbers(d, n, 1, elem, func(b []byte) int8 { return int8(b[0]) })
	case ValueUint16:
		return numbers(d, n, 2, elem, binary.LittleEndian.Uint16)
	case ValueInt16:
		return numbers(d, n, 2, elem, func(b []byte) int16 { return int16(binary.LittleEndian.Uint16(b)) })
	case ValueUint32:
		return numbers(d, n, 4, elem, binary.LittleEndian.Uint32)
	case ValueInt32:
		return numbers(d, n, 4, elem, func(b []byte) int32 { return int32(binary.LittleEndian.Uint32(b)) })
	case ValueFloat32:
		return numbers(d, n, 4, elem, func(b []byte) float32 { return math.Float32frombits(binary.LittleEndian.Uint32(b)) })
	case ValueUint64:
		return numbers(d, n, 8, elem, binary.LittleEndian.Uint64)
	case ValueInt64:
		return numbers(d, n, 8, elem, func(b []byte) int64 { return int64(binary.LittleEndian.Uint64(b)) })
	case ValueFloat64:
		return numbers(d, n, 8, elem, func(b []byte) float64 { return math.Float64frombits(binary.LittleEndian.Uint64(b)) })
	case ValueBool:
		start := d.off
		raw, err := numbers(d, n, 1, elem, func(b []byte) uint8 { return b[0] })
		if err != nil {
			return nil, err
		}
		out := make([]bool, n)
		for i, v := range raw {
			if v > 1 {
				return nil, d.fail(start+int64(i), elem, ErrBadValue, "bool byte at index %d is %d", i, v)
			}
			out[i] = v == 1
		}
		return out, nil
	case ValueString:
		out := make([]string, n)
		for i := range out {
			s, err := d.str(elem, d.lim.MaxStringLen)
			if err != nil {
				return nil, err
			}
			out[i] = s
		}
		return out, nil
	}
	return nil, d.fail(typOff, field+" element type", ErrValueType, "type %d", t)
}

// numbers decodes n fixed-width values in chunks so a large array needs no
// second full-size byte buffer.
func numbers[T any](d *decoder, n uint64, width int, field string, conv func([]byte) T) ([]T, error) {
	out := make([]T, n)
	// The chunk buffer grows to what the largest array so far needed, at
	// most arrayChunk, so small files stay cheap to parse.
	if want := min(n*uint64(width), arrayChunk); uint64(len(d.chunk)) < want {
		d.chunk = make([]byte, want)
	}
	per := len(d.chunk) / width
	for i := 0; i < len(out); i += per {
		k := min(per, len(out)-i)
		buf := d.chunk[:k*width]
		if err := d.readFull(buf, field); err != nil {
			return nil, err
		}
		for j := range k {
			out[i+j] = conv(buf[j*width:])
		}
	}
	return out, nil
}

func (d *decoder) tensors(f *File, n uint64) ([]int64, error) {
	f.Tensors = make([]TensorInfo, 0, n)
	offsets := make([]int64, 0, n)
	seen := make(map[string]struct{}, n)
	for i := range n {
		start := d.off
		field := fmt.Sprintf("tensor #%d name", i)
		name, err := d.str(field, d.lim.MaxStringLen)
		if err != nil {
			return nil, err
		}
		if why := checkName(name); why != "" {
			return nil, d.fail(start, field, ErrBadString, "name %s", why)
		}
		if len(name) > MaxTensorNameLen {
			return nil, d.fail(start, field, ErrBadString, "name is %d bytes, ggml allows at most %d", len(name), MaxTensorNameLen)
		}
		field = fmt.Sprintf("tensor %q", name)
		if _, dup := seen[name]; dup {
			return nil, d.fail(start, field+" name", ErrDuplicate, "tensor name appears twice")
		}
		seen[name] = struct{}{}

		nDimsOff := d.off
		nDims, err := d.u32(field + " n_dims")
		if err != nil {
			return nil, err
		}
		if nDims == 0 || nDims > MaxDims {
			return nil, d.fail(nDimsOff, field+" n_dims", ErrShape, "%d dimensions (want 1..%d)", nDims, MaxDims)
		}
		dimsOff := d.off
		dims := make([]uint64, nDims)
		for j := range dims {
			if dims[j], err = d.u64(field + " dims"); err != nil {
				return nil, err
			}
			// Zero is rejected although ggml's parser allows it: its
			// overflow check divides by the dimension.
			if dims[j] == 0 {
				return nil, d.fail(dimsOff, field+" dims", ErrShape, "dimension %d is zero", j)
			}
		}
		if _, ok := elements(dims); !ok {
			return nil, d.fail(dimsOff, field+" dims", ErrShapeOverflow, "shape %v has 2^62 or more elements", dims)
		}

		typOff := d.off
		t, err := d.u32(field + " type")
		if err != nil {
			return nil, err
		}
		typ := GGMLType(t)
		if !typ.Valid() {
			return nil, d.fail(typOff, field+" type", ErrTensorType, "type id %d", t)
		}
		if dims[0]%typ.BlockSize() != 0 {
			return nil, d.fail(dimsOff, field+" dims", ErrShape, "row length %d is not a multiple of %s's block size %d", dims[0], typ, typ.BlockSize())
		}
		size, ok := tensorBytes(typ, dims)
		if !ok {
			return nil, d.fail(dimsOff, field+" dims", ErrShapeOverflow, "%s %v is 2^63 bytes or more", typ, dims)
		}

		offOff := d.off
		off, err := d.u64(field + " offset")
		if err != nil {
			return nil, err
		}
		if off%f.Alignment != 0 {
			return nil, d.fail(offOff, field+" offset", ErrAlignment, "offset %d is not a multiple of alignment %d", off, f.Alignment)
		}
		f.Tensors = append(f.Tensors, TensorInfo{Name: name, Dims: dims, Type: typ, Offset: off, Size: size})
		offsets = append(offsets, offOff)
	}
	return offsets, nil
}

// elements multiplies dims without overflow; ok is false at 2^62 or more.
func elements(dims []uint64) (uint64, bool) {
	n := uint64(1)
	for _, v := range dims {
		hi, lo := bits.Mul64(n, v)
		if hi != 0 || lo >= maxElements {
			return 0, false
		}
		n = lo
	}
	return n, true
}

// tensorBytes is ggml_nbytes for a contiguous tensor: whole blocks of ne0
// times the other dims. ok is false if it does not fit in an int64.
func tensorBytes(t GGMLType, dims []uint64) (uint64, bool) {
	n, ok := elements(dims)
	bs := t.BlockSize()
	if !ok || bs == 0 {
		return 0, false
	}
	// ne0 % bs == 0 was checked, so n/bs counts whole blocks exactly.
	hi, lo := bits.Mul64(n/bs, t.TypeSize())
	if hi != 0 || lo > math.MaxInt64 {
		return 0, false
	}
	return lo, true
}

func alignUp(n, a uint64) uint64 { return (n + a - 1) &^ (a - 1) }

// checkAlignment applies general.alignment. llama.cpp reads it with
// gguf_get_val_u32, which aborts the process on any other type.
func checkAlignment(f *File, offsets []int64) error {
	for i, kv := range f.KVs {
		if kv.Key != AlignmentKey {
			continue
		}
		field := fmt.Sprintf("key %q", kv.Key)
		v, ok := kv.Value.(uint32)
		if !ok || kv.Type != ValueUint32 {
			return &FormatError{Offset: offsets[i], Field: field, Err: ErrAlignment, Detail: fmt.Sprintf("type %s, want UINT32", kv.Type)}
		}
		if v == 0 || v&(v-1) != 0 {
			return &FormatError{Offset: offsets[i], Field: field, Err: ErrAlignment, Detail: fmt.Sprintf("%d is not a power of two", v)}
		}
		f.Alignment = uint64(v)
	}
	return nil
}

// Tokenizer keys that llama.cpp reads as raw arrays indexed by token id
// without checking their type or length.
const (
	keyTokens    = "tokenizer.ggml.tokens"
	keyScores    = "tokenizer.ggml.scores"
	keyTokenType = "tokenizer.ggml.token_type"
	keyMerges    = "tokenizer.ggml.merges"
)

// checkTokenizer rejects vocabulary metadata that would make llama.cpp read
// out of bounds or abort: per-token arrays shorter than the token list, of
// the wrong element type, or a token list with duplicates (which trips an
// assertion in llama_vocab::load).
func checkTokenizer(f *File, offsets []int64) error {
	idx := func(key string) int {
		return slices.IndexFunc(f.KVs, func(kv KV) bool { return kv.Key == key })
	}
	bad := func(i int, format string, args ...any) error {
		return &FormatError{Offset: offsets[i], Field: fmt.Sprintf("key %q", f.KVs[i].Key), Err: ErrMetadata, Detail: fmt.Sprintf(format, args...)}
	}
	if i := idx(keyMerges); i >= 0 {
		if _, ok := f.KVs[i].Value.([]string); !ok {
			return bad(i, "want an array of strings, have %s", describe(f.KVs[i]))
		}
	}
	ti := idx(keyTokens)
	if ti < 0 {
		return nil
	}
	tokens, ok := f.KVs[ti].Value.([]string)
	if !ok {
		return bad(ti, "want an array of strings, have %s", describe(f.KVs[ti]))
	}
	seen := make(map[string]struct{}, len(tokens))
	for id, tok := range tokens {
		if tok == "" {
			// llama.cpp renames empty tokens this way before indexing.
			tok = fmt.Sprintf("[EMPTY_%d]", id)
		}
		if _, dup := seen[tok]; dup {
			return bad(ti, "token %q (id %d) appears twice", tok, id)
		}
		seen[tok] = struct{}{}
	}
	if i := idx(keyScores); i >= 0 {
		s, ok := f.KVs[i].Value.([]float32)
		if !ok || len(s) < len(tokens) {
			return bad(i, "want %d FLOAT32 scores, have %s", len(tokens), describe(f.KVs[i]))
		}
	}
	if i := idx(keyTokenType); i >= 0 {
		s, ok := f.KVs[i].Value.([]int32)
		if !ok || len(s) < len(tokens) {
			return bad(i, "want %d INT32 token types, have %s", len(tokens), describe(f.KVs[i]))
		}
	}
	return nil
}

func describe(kv KV) string {
	if kv.Type != ValueArray {
		return kv.Type.String()
	}
	et, _ := kv.ElemType()
	n, _ := arrayLen(kv.Value)
	return fmt.Sprintf("%d %s elements", n, et)
}

// checkPlacement verifies every tensor's data lies inside the file and that
// no two tensors share bytes.
func checkPlacement(f *File, offsets []int64) error {
	var dataLen uint64
	if f.DataOffset < f.Size {
		dataLen = uint64(f.Size - f.DataOffset)
	}
	for i, t := range f.Tensors {
		// Written as two comparisons so Offset+Size cannot overflow.
		if t.Offset > dataLen || t.Size > dataLen-t.Offset {
			return &FormatError{Offset: offsets[i], Field: fmt.Sprintf("tensor %q offset", t.Name), Err: ErrOutOfBounds,
				Detail: fmt.Sprintf("bytes [%d, +%d) of a %d-byte data section", t.Offset, t.Size, dataLen)}
		}
	}
	order := make([]int, len(f.Tensors))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		return cmp.Compare(f.Tensors[a].Offset, f.Tensors[b].Offset)
	})
	for k := 1; k < len(order); k++ {
		prev, cur := f.Tensors[order[k-1]], f.Tensors[order[k]]
		if prev.Offset+prev.Size > cur.Offset {
			return &FormatError{Offset: offsets[order[k]], Field: fmt.Sprintf("tensor %q offset", cur.Name), Err: ErrOverlap,
				Detail: fmt.Sprintf("[%d, +%d) overlaps tensor %q at [%d, +%d)", cur.Offset, cur.Size, prev.Name, prev.Offset, prev.Size)}
		}
	}
	return nil
}
