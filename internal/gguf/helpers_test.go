package gguf

import (
	"bytes"
	"encoding/binary"
	"math"
)

// Raw encoders build files byte by byte, so tests can produce the malformed
// input the Writer refuses to emit.

func le32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }
func le64(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }
func f32(v float32) []byte { return le32(math.Float32bits(v)) }
func gstr(s string) []byte { return append(le64(uint64(len(s))), s...) }
func cat(parts ...[]byte) []byte {
	return bytes.Join(parts, nil)
}

// head is a bare v3 header with the given counts and nothing after it.
func head(nTensors, nKVs uint64) []byte {
	return cat([]byte("GGUF"), le32(3), le64(nTensors), le64(nKVs))
}

// rawKV is one metadata entry: key, type tag and already-encoded value.
type rawKV struct {
	key string
	typ uint32
	val []byte
}

func (kv rawKV) bytes() []byte { return cat(gstr(kv.key), le32(kv.typ), kv.val) }

// arr encodes an array value body: element type, count, elements.
func arr(elem uint32, n uint64, elems ...[]byte) []byte {
	return cat(le32(elem), le64(n), cat(elems...))
}

// rawTensor is one tensor info.
type rawTensor struct {
	name string
	dims []uint64
	typ  uint32
	off  uint64
}

func (t rawTensor) bytes() []byte {
	b := cat(gstr(t.name), le32(uint32(len(t.dims))))
	for _, d := range t.dims {
		b = append(b, le64(d)...)
	}
	return cat(b, le32(t.typ), le64(t.off))
}

// rawFile describes a whole file; build encodes it with padding to align
// (32 if zero) followed by dataLen bytes of tensor data.
type rawFile struct {
	magic    string
	version  uint32
	nTensors *uint64 // overrides len(tensors)
	nKVs     *uint64 // overrides len(kvs)
	kvs      []rawKV
	tensors  []rawTensor
	align    int
	dataLen  int
}

func ptr(v uint64) *uint64 { return &v }

func (f rawFile) build() []byte {
	m := f.magic
	if m == "" {
		m = "GGUF"
	}
	v := f.version
	if v == 0 {
		v = 3
	}
	nt, nk := uint64(len(f.tensors)), uint64(len(f.kvs))
	if f.nTensors != nil {
		nt = *f.nTensors
	}
	if f.nKVs != nil {
		nk = *f.nKVs
	}
	b := cat([]byte(m), le32(v), le64(nt), le64(nk))
	for _, kv := range f.kvs {
		b = append(b, kv.bytes()...)
	}
	for _, t := range f.tensors {
		b = append(b, t.bytes()...)
	}
	a := f.align
	if a == 0 {
		a = 32
	}
	for len(b)%a != 0 {
		b = append(b, 0)
	}
	// Non-zero data makes it visible if a test reads the wrong bytes.
	for i := range f.dataLen {
		b = append(b, byte(i*7+1))
	}
	return b
}

// validRaw is a small well-formed file: two KVs and two F32 tensors of 16
// and 8 elements laid out back to back (64 bytes, then 32).
func validRaw() rawFile {
	return rawFile{
		kvs: []rawKV{
			{"general.architecture", 8, gstr("llama")},
			{"llama.block_count", 4, le32(1)},
		},
		tensors: []rawTensor{
			{"a.weight", []uint64{4, 4}, 0, 0},
			{"b.weight", []uint64{8}, 0, 64},
		},
		dataLen: 96,
	}
}
