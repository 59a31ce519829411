package gguf

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math"
)

// Writer assembles a GGUF v3 file: metadata and tensor infos are collected
// up front, and tensor data is streamed from fill callbacks when WriteTo
// runs, so a multi-GB model never sits in memory. Tensors are laid out in
// the order added, each at the next aligned offset, which is the contiguous
// layout llama.cpp's loader insists on.
//
// The writer refuses anything the reader would reject, with the same
// sentinel errors.
type Writer struct {
	kvs       []KV
	keys      map[string]struct{}
	tensors   []pendingTensor
	names     map[string]struct{}
	alignment uint64
}

type pendingTensor struct {
	info TensorInfo
	fill func(io.Writer) error
}

// NewWriter returns an empty Writer using DefaultAlignment.
func NewWriter() *Writer {
	return &Writer{
		keys:      make(map[string]struct{}),
		names:     make(map[string]struct{}),
		alignment: DefaultAlignment,
	}
}

// SetAlignment sets the data alignment; it must be a power of two that fits
// in a uint32. A non-default value is written as general.alignment. It must
// be called before AddTensor, since tensor offsets depend on it.
func (w *Writer) SetAlignment(a uint64) error {
	if a == 0 || a&(a-1) != 0 || a > math.MaxUint32 {
		return fmt.Errorf("gguf: alignment %d: %w", a, ErrAlignment)
	}
	if len(w.tensors) > 0 {
		return fmt.Errorf("gguf: alignment must be set before tensors are added: %w", ErrAlignment)
	}
	w.alignment = a
	return nil
}

// AddKV appends a metadata entry. The GGUF type follows the Go type of
// value: uint8, int8, uint16, int16, uint32, int32, float32, bool, string,
// uint64, int64, float64, or a slice of one of those. int and uint are
// refused because their width is not part of the format. general.alignment
// is reserved for SetAlignment. Slices are kept, not copied: do not modify
// them before WriteTo.
func (w *Writer) AddKV(key string, value any) error {
	if why := checkName(key); why != "" {
		return fmt.Errorf("gguf: key %s: %w", why, ErrBadString)
	}
	if len(key) > maxKeyLen {
		return fmt.Errorf("gguf: key of %d bytes: %w", len(key), ErrBadString)
	}
	if key == AlignmentKey {
		return fmt.Errorf("gguf: key %q: use SetAlignment: %w", key, ErrDuplicate)
	}
	if _, dup := w.keys[key]; dup {
		return fmt.Errorf("gguf: key %q: %w", key, ErrDuplicate)
	}
	kv := KV{Key: key, Value: value}
	if t, ok := scalarType(value); ok {
		kv.Type = t
	} else if _, ok := (KV{Type: ValueArray, Value: value}).ElemType(); ok {
		kv.Type = ValueArray
	} else {
		return fmt.Errorf("gguf: key %q: Go type %T: %w", key, value, ErrValueType)
	}
	w.keys[key] = struct{}{}
	w.kvs = append(w.kvs, kv)
	return nil
}

func scalarType(v any) (ValueType, bool) {
	switch v.(type) {
	case uint8:
		return ValueUint8, true
	case int8:
		return ValueInt8, true
	case uint16:
		return ValueUint16, true
	case int16:
		return ValueInt16, true
	case uint32:
		return ValueUint32, true
	case int32:
		return ValueInt32, true
	case float32:
		return ValueFloat32, true
	case bool:
		return ValueBool, true
	case string:
		return ValueString, true
	case uint64:
		return ValueUint64, true
	case int64:
		return ValueInt64, true
	case float64:
		return ValueFloat64, true
	}
	return 0, false
}

// TensorSize returns the data size in bytes of a tensor of type t and shape
// dims, validating them as Read would.
func TensorSize(t GGMLType, dims []uint64) (uint64, error) {
	if !t.Valid() {
		return 0, fmt.Errorf("gguf: type %s: %w", t, ErrTensorType)
	}
	if len(dims) == 0 || len(dims) > MaxDims {
		return 0, fmt.Errorf("gguf: %d dimensions: %w", len(dims), ErrShape)
	}
	for i, d := range dims {
		if d == 0 {
			return 0, fmt.Errorf("gguf: dimension %d is zero: %w", i, ErrShape)
		}
	}
	if _, ok := elements(dims); !ok {
		return 0, fmt.Errorf("gguf: shape %v: %w", dims, ErrShapeOverflow)
	}
	if dims[0]%t.BlockSize() != 0 {
		return 0, fmt.Errorf("gguf: row length %d is not a multiple of %s's block size %d: %w", dims[0], t, t.BlockSize(), ErrShape)
	}
	size, ok := tensorBytes(t, dims)
	if !ok {
		return 0, fmt.Errorf("gguf: %s %v: %w", t, dims, ErrShapeOverflow)
	}
	return size, nil
}

// AddTensor appends a tensor. fill is called once per WriteTo and must
// write exactly the tensor's size in bytes (see TensorSize).
func (w *Writer) AddTensor(name string, t GGMLType, dims []uint64, fill func(io.Writer) error) error {
	if why := checkName(name); why != "" {
		return fmt.Errorf("gguf: tensor name %s: %w", why, ErrBadString)
	}
	if len(name) > MaxTensorNameLen {
		return fmt.Errorf("gguf: tensor name %q is %d bytes, max %d: %w", name, len(name), MaxTensorNameLen, ErrBadString)
	}
	if _, dup := w.names[name]; dup {
		return fmt.Errorf("gguf: tensor %q: %w", name, ErrDuplicate)
	}
	size, err := TensorSize(t, dims)
	if err != nil {
		return fmt.Errorf("tensor %q: %w", name, err)
	}
	if fill == nil {
		return fmt.Errorf("gguf: tensor %q: nil fill: %w", name, ErrFillSize)
	}
	var off uint64
	if n := len(w.tensors); n > 0 {
		last := w.tensors[n-1].info
		off = alignUp(last.Offset+last.Size, w.alignment)
	}
	w.names[name] = struct{}{}
	w.tensors = append(w.tensors, pendingTensor{
		info: TensorInfo{Name: name, Dims: append([]uint64(nil), dims...), Type: t, Offset: off, Size: size},
		fill: fill,
	})
	return nil
}

// TensorDataSize is the size of the data section WriteTo will emit,
// including the padding after each tensor.
func (w *Writer) TensorDataSize() uint64 {
	if n := len(w.tensors); n > 0 {
		last := w.tensors[n-1].info
		return alignUp(last.Offset+last.Size, w.alignment)
	}
	return 0
}

// WriteTo writes the file: GGUF version 3, then tensor data streamed from
// each fill function in order.
func (w *Writer) WriteTo(dst io.Writer) (int64, error) {
	cw := &countingWriter{w: dst}
	e := &encoder{w: bufio.NewWriterSize(cw, 1<<20)}
	kvs := w.kvs
	if w.alignment != DefaultAlignment {
		kvs = append([]KV{{Key: AlignmentKey, Type: ValueUint32, Value: uint32(w.alignment)}}, kvs...)
	}
	e.u32(magic)
	e.u32(3)
	e.u64(uint64(len(w.tensors)))
	e.u64(uint64(len(kvs)))
	for _, kv := range kvs {
		e.str(kv.Key)
		e.u32(uint32(kv.Type))
		e.value(kv)
	}
	for _, t := range w.tensors {
		e.str(t.info.Name)
		e.u32(uint32(len(t.info.Dims)))
		for _, d := range t.info.Dims {
			e.u64(d)
		}
		e.u32(uint32(t.info.Type))
		e.u64(t.info.Offset)
	}
	e.pad(w.alignment)
	for _, t := range w.tensors {
		if e.err != nil {
			break
		}
		tw := &tensorWriter{w: e.w, left: t.info.Size}
		if err := t.fill(tw); err != nil {
			return cw.n, fmt.Errorf("gguf: filling tensor %q: %w", t.info.Name, err)
		}
		if tw.left != 0 {
			return cw.n, fmt.Errorf("gguf: tensor %q: fill wrote %d of %d bytes: %w", t.info.Name, t.info.Size-tw.left, t.info.Size, ErrFillSize)
		}
		e.n += t.info.Size
		// Pad after every tensor, the last included, as ggml's writer does:
		// gguf_init_from_file without no_alloc reads the padded size.
		e.pad(w.alignment)
	}
	if e.err == nil {
		e.err = e.w.Flush()
	}
	if e.err != nil {
		return cw.n, fmt.Errorf("gguf: write: %w", e.err)
	}
	return cw.n, nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// tensorWriter passes through at most left bytes, so an over-long fill is
// caught before it corrupts the next tensor's position.
type tensorWriter struct {
	w    io.Writer
	left uint64
}

func (t *tensorWriter) Write(p []byte) (int, error) {
	if uint64(len(p)) > t.left {
		return 0, fmt.Errorf("gguf: fill wrote more than the tensor's %d remaining bytes: %w", t.left, ErrFillSize)
	}
	n, err := t.w.Write(p)
	t.left -= uint64(n)
	return n, err
}

// encoder writes little-endian fields, remembering the first error so the
// header code can stay linear.
type encoder struct {
	w   *bufio.Writer
	n   uint64
	err error
	buf [8]byte
}

func (e *encoder) write(p []byte) {
	if e.err != nil {
		return
	}
	_, e.err = e.w.Write(p)
	e.n += uint64(len(p))
}

func (e *encoder) u8(v uint8) { e.buf[0] = v; e.write(e.buf[:1]) }
func (e *encoder) u16(v uint16) {
	binary.LittleEndian.PutUint16(e.buf[:], v)
	e.write(e.buf[:2])
}
func (e *encoder) u32(v uint32) {
	binary.LittleEndian.PutUint32(e.buf[:], v)
	e.write(e.buf[:4])
}
func (e *encoder) u64(v uint64) {
	binary.LittleEndian.PutUint64(e.buf[:], v)
	e.write(e.buf[:8])
}
func (e *encoder) str(s string) {
	e.u64(uint64(len(s)))
	if e.err == nil {
		_, e.err = e.w.WriteString(s)
		e.n += uint64(len(s))
	}
}

func (e *encoder) zeros(n uint64) {
	var z [64]byte
	for n > 0 && e.err == nil {
		k := min(n, uint64(len(z)))
		e.write(z[:k])
		n -= k
	}
}

func (e *encoder) pad(a uint64) { e.zeros(alignUp(e.n, a) - e.n) }

func (e *encoder) bool(b bool) {
	if b {
		e.u8(1)
	} else {
		e.u8(0)
	}
}

func (e *encoder) value(kv KV) {
	switch v := kv.Value.(type) {
	case uint8:
		e.u8(v)
	case int8:
		e.u8(uint8(v))
	case uint16:
		e.u16(v)
	case int16:
		e.u16(uint16(v))
	case uint32:
		e.u32(v)
	case int32:
		e.u32(uint32(v))
	case float32:
		e.u32(math.Float32bits(v))
	case bool:
		e.bool(v)
	case string:
		e.str(v)
	case uint64:
		e.u64(v)
	case int64:
		e.u64(uint64(v))
	case float64:
		e.u64(math.Float64bits(v))
	default:
		et, _ := kv.ElemType()
		n, _ := arrayLen(v)
		e.u32(uint32(et))
		e.u64(uint64(n))
		e.array(v)
	}
}

func (e *encoder) array(v any) {
	switch s := v.(type) {
	case []uint8:
		e.write(s)
	case []int8:
		for _, x := range s {
			e.u8(uint8(x))
		}
	case []uint16:
		for _, x := range s {
			e.u16(x)
		}
	case []int16:
		for _, x := range s {
			e.u16(uint16(x))
		}
	case []uint32:
		for _, x := range s {
			e.u32(x)
		}
	case []int32:
		for _, x := range s {
			e.u32(uint32(x))
		}
	case []float32:
		for _, x := range s {
			e.u32(math.Float32bits(x))
		}
	case []bool:
		for _, x := range s {
			e.bool(x)
		}
	case []string:
		for _, x := range s {
			e.str(x)
		}
	case []uint64:
		for _, x := range s {
			e.u64(x)
		}
	case []int64:
		for _, x := range s {
			e.u64(uint64(x))
		}
	case []float64:
		for _, x := range s {
			e.u64(math.Float64bits(x))
		}
	}
}
