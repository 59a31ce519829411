package gguf

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

// fillPattern writes n bytes derived from seed, so each tensor's bytes are
// recognisable after a round trip.
func fillPattern(n uint64, seed byte) func(io.Writer) error {
	return func(w io.Writer) error {
		b := make([]byte, n)
		for i := range b {
			b[i] = seed + byte(i)
		}
		_, err := w.Write(b)
		return err
	}
}

func TestWriterRoundTrip(t *testing.T) {
	kvs := []KV{
		{"u8", ValueUint8, uint8(200)},
		{"i8", ValueInt8, int8(-100)},
		{"u16", ValueUint16, uint16(60000)},
		{"i16", ValueInt16, int16(-30000)},
		{"u32", ValueUint32, uint32(4000000000)},
		{"i32", ValueInt32, int32(-2000000000)},
		{"f32", ValueFloat32, float32(3.25)},
		{"bool", ValueBool, true},
		{"string", ValueString, "héllo ▁world"},
		{"u64", ValueUint64, uint64(1<<64 - 1)},
		{"i64", ValueInt64, int64(-1 << 63)},
		{"f64", ValueFloat64, 2.5e300},
		{"a.u8", ValueArray, []uint8{0, 1, 255}},
		{"a.i8", ValueArray, []int8{-128, 127}},
		{"a.u16", ValueArray, []uint16{1, 65535}},
		{"a.i16", ValueArray, []int16{-1, 2}},
		{"a.u32", ValueArray, []uint32{7}},
		{"a.i32", ValueArray, []int32{-7, 0, 7}},
		{"a.f32", ValueArray, []float32{-0.5, 1e-30}},
		{"a.bool", ValueArray, []bool{true, false, true}},
		{"a.string", ValueArray, []string{"", "x", "<0x0A>"}},
		{"a.u64", ValueArray, []uint64{1 << 40}},
		{"a.i64", ValueArray, []int64{-1 << 40}},
		{"a.f64", ValueArray, []float64{0.1}},
		{"a.empty", ValueArray, []float32{}},
	}
	type tensor struct {
		name string
		typ  GGMLType
		dims []uint64
	}
	tensors := []tensor{
		{"f32", TypeF32, []uint64{3}},
		{"f16", TypeF16, []uint64{5, 3}},
		{"q8", TypeQ8_0, []uint64{64, 2}},
		{"4d", TypeI8, []uint64{1, 2, 3, 4}},
	}
	w := NewWriter()
	for _, kv := range kvs {
		if err := w.AddKV(kv.Key, kv.Value); err != nil {
			t.Fatalf("AddKV(%s): %v", kv.Key, err)
		}
	}
	for i, tt := range tensors {
		size, err := TensorSize(tt.typ, tt.dims)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.AddTensor(tt.name, tt.typ, tt.dims, fillPattern(size, byte(i*50))); err != nil {
			t.Fatalf("AddTensor(%s): %v", tt.name, err)
		}
	}
	var buf bytes.Buffer
	n, err := w.WriteTo(&buf)
	if err != nil {
		t.Fatalf("WriteTo: %v", err)
	}
	if n != int64(buf.Len()) {
		t.Errorf("WriteTo returned %d, wrote %d", n, buf.Len())
	}
	f, err := readBytes(buf.Bytes(), DefaultLimits())
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if !reflect.DeepEqual(f.KVs, kvs) {
		t.Errorf("KVs differ:\nhave %#v\nwant %#v", f.KVs, kvs)
	}
	if have, want := len(f.Tensors), len(tensors); have != want {
		t.Fatalf("have %d tensors, want %d", have, want)
	}
	for i, tt := range tensors {
		ti := f.Tensors[i]
		if ti.Name != tt.name || ti.Type != tt.typ || !reflect.DeepEqual(ti.Dims, tt.dims) {
			t.Errorf("tensor %d: have %s %s %v, want %s %s %v", i, ti.Name, ti.Type, ti.Dims, tt.name, tt.typ, tt.dims)
		}
		start := f.DataOffset + int64(ti.Offset)
		var want bytes.Buffer
		_ = fillPattern(ti.Size, byte(i*50))(&want)
		if have := buf.Bytes()[start : start+int64(ti.Size)]; !bytes.Equal(have, want.Bytes()) {
			t.Errorf("tensor %s data differs", ti.Name)
		}
	}
	if have, want := w.TensorDataSize(), uint64(f.Size-f.DataOffset); have != want {
		t.Errorf("TensorDataSize: have %d, want %d", have, want)
	}
}

func TestWriterAlignment(t *testing.T) {
	w := NewWriter()
	if err := w.SetAlignment(256); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a", "b"} {
		if err := w.AddTensor(name, TypeF32, []uint64{3}, fillPattern(12, 1)); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	f, err := readBytes(buf.Bytes(), DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	if f.Alignment != 256 || f.DataOffset%256 != 0 || f.Tensors[1].Offset != 256 {
		t.Errorf("have alignment %d data offset %d second tensor at %d", f.Alignment, f.DataOffset, f.Tensors[1].Offset)
	}
}

func TestWriterRejects(t *testing.T) {
	ok := fillPattern(4, 0)
	tests := []struct {
		name string
		do   func(w *Writer) error
		want error
	}{
		{"int value", func(w *Writer) error { return w.AddKV("k", 1) }, ErrValueType},
		{"[]int value", func(w *Writer) error { return w.AddKV("k", []int{1}) }, ErrValueType},
		{"nil value", func(w *Writer) error { return w.AddKV("k", nil) }, ErrValueType},
		{"nested array", func(w *Writer) error { return w.AddKV("k", [][]string{{"a"}}) }, ErrValueType},
		{"empty key", func(w *Writer) error { return w.AddKV("", uint8(1)) }, ErrBadString},
		{"invalid UTF-8 key", func(w *Writer) error { return w.AddKV("\xff", uint8(1)) }, ErrBadString},
		{"duplicate key", func(w *Writer) error {
			_ = w.AddKV("k", uint8(1))
			return w.AddKV("k", uint8(2))
		}, ErrDuplicate},
		{"alignment key", func(w *Writer) error { return w.AddKV(AlignmentKey, uint32(64)) }, ErrDuplicate},
		{"alignment 3", func(w *Writer) error { return w.SetAlignment(3) }, ErrAlignment},
		{"alignment 0", func(w *Writer) error { return w.SetAlignment(0) }, ErrAlignment},
		{"alignment after tensors", func(w *Writer) error {
			_ = w.AddTensor("t", TypeF32, []uint64{1}, ok)
			return w.SetAlignment(64)
		}, ErrAlignment},
		{"tensor name too long", func(w *Writer) error {
			return w.AddTensor(strings.Repeat("x", 64), TypeF32, []uint64{1}, ok)
		}, ErrBadString},
		{"duplicate tensor", func(w *Writer) error {
			_ = w.AddTensor("t", TypeF32, []uint64{1}, ok)
			return w.AddTensor("t", TypeF32, []uint64{1}, ok)
		}, ErrDuplicate},
		{"tensor type 4", func(w *Writer) error { return w.AddTensor("t", 4, []uint64{1}, ok) }, ErrTensorType},
		{"no dims", func(w *Writer) error { return w.AddTensor("t", TypeF32, nil, ok) }, ErrShape},
		{"5 dims", func(w *Writer) error { return w.AddTensor("t", TypeF32, []uint64{1, 1, 1, 1, 1}, ok) }, ErrShape},
		{"zero dim", func(w *Writer) error { return w.AddTensor("t", TypeF32, []uint64{0}, ok) }, ErrShape},
		{"Q8_0 row 33", func(w *Writer) error { return w.AddTensor("t", TypeQ8_0, []uint64{33}, ok) }, ErrShape},
		{"overflow", func(w *Writer) error { return w.AddTensor("t", TypeF32, []uint64{1 << 40, 1 << 40}, ok) }, ErrShapeOverflow},
		{"nil fill", func(w *Writer) error { return w.AddTensor("t", TypeF32, []uint64{1}, nil) }, ErrFillSize},
		{"fill too short", func(w *Writer) error {
			_ = w.AddTensor("t", TypeF32, []uint64{2}, ok)
			_, err := w.WriteTo(io.Discard)
			return err
		}, ErrFillSize},
		{"fill too long", func(w *Writer) error {
			_ = w.AddTensor("t", TypeF32, []uint64{2}, fillPattern(9, 0))
			_, err := w.WriteTo(io.Discard)
			return err
		}, ErrFillSize},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.do(NewWriter()); !errors.Is(err, tt.want) {
				t.Errorf("have %v, want %v", err, tt.want)
			}
		})
	}
}

func TestWriterFillError(t *testing.T) {
	boom := errors.New("boom")
	w := NewWriter()
	if err := w.AddTensor("t", TypeF32, []uint64{1}, func(io.Writer) error { return boom }); err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteTo(io.Discard); !errors.Is(err, boom) {
		t.Errorf("have %v, want wrapped boom", err)
	}
}

type failWriter struct{ after int }

func (f *failWriter) Write(p []byte) (int, error) {
	if f.after < len(p) {
		return 0, io.ErrShortWrite
	}
	f.after -= len(p)
	return len(p), nil
}

func TestWriterPropagatesWriteError(t *testing.T) {
	w := NewWriter()
	_ = w.AddKV("k", strings.Repeat("x", 2<<20))
	if _, err := w.WriteTo(&failWriter{after: 100}); !errors.Is(err, io.ErrShortWrite) {
		t.Errorf("have %v, want io.ErrShortWrite", err)
	}
}
