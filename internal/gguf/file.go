package gguf

import "math"

// File is the validated header of a GGUF file. Tensor data is not loaded:
// tensor i occupies bytes [DataOffset+Tensors[i].Offset, +Tensors[i].Size).
type File struct {
	Version    uint32
	KVs        []KV // in file order
	Tensors    []TensorInfo
	Alignment  uint64 // general.alignment or DefaultAlignment
	DataOffset int64  // start of the data section
	Size       int64  // size of the whole file
}

// KV is one metadata entry. Value holds the Go type matching Type: uint8,
// int8, uint16, int16, uint32, int32, float32, bool, string, uint64, int64
// or float64; for ValueArray a slice of one of those ([]string, []float32,
// []int32, ...). String values are not required to be UTF-8.
type KV struct {
	Key   string
	Type  ValueType
	Value any
}

// ElemType returns the element type of an array value; ok is false if kv
// is not an array.
func (kv KV) ElemType() (t ValueType, ok bool) {
	if kv.Type != ValueArray {
		return 0, false
	}
	switch kv.Value.(type) {
	case []uint8:
		return ValueUint8, true
	case []int8:
		return ValueInt8, true
	case []uint16:
		return ValueUint16, true
	case []int16:
		return ValueInt16, true
	case []uint32:
		return ValueUint32, true
	case []int32:
		return ValueInt32, true
	case []float32:
		return ValueFloat32, true
	case []bool:
		return ValueBool, true
	case []string:
		return ValueString, true
	case []uint64:
		return ValueUint64, true
	case []int64:
		return ValueInt64, true
	case []float64:
		return ValueFloat64, true
	}
	return 0, false
}

// TensorInfo describes one tensor. Dims are in ggml order: Dims[0] (ne0)
// is the contiguous row length.
type TensorInfo struct {
	Name   string
	Dims   []uint64
	Type   GGMLType
	Offset uint64 // relative to File.DataOffset
	Size   uint64 // bytes
}

// Elements is the product of the dimensions. Read guarantees it is below
// 2^62 for every tensor it returns.
func (t TensorInfo) Elements() uint64 {
	n, _ := elements(t.Dims)
	return n
}

// Lookup returns the entry for key.
func (f *File) Lookup(key string) (KV, bool) {
	// A linear scan: files hold tens of keys and lookups are rare, and it
	// stays correct if a caller edits KVs.
	for _, kv := range f.KVs {
		if kv.Key == key {
			return kv, true
		}
	}
	return KV{}, false
}

// String returns a STRING value.
func (f *File) String(key string) (string, bool) {
	kv, ok := f.Lookup(key)
	if !ok {
		return "", false
	}
	s, ok := kv.Value.(string)
	return s, ok
}

// Bool returns a BOOL value.
func (f *File) Bool(key string) (bool, bool) {
	kv, ok := f.Lookup(key)
	if !ok {
		return false, false
	}
	b, ok := kv.Value.(bool)
	return b, ok
}

// Uint returns an integer value of any width or signedness, provided it is
// not negative.
func (f *File) Uint(key string) (uint64, bool) {
	kv, ok := f.Lookup(key)
	if !ok {
		return 0, false
	}
	switch v := kv.Value.(type) {
	case uint8:
		return uint64(v), true
	case uint16:
		return uint64(v), true
	case uint32:
		return uint64(v), true
	case uint64:
		return v, true
	case int8, int16, int32, int64:
		if i := asInt64(v); i >= 0 {
			return uint64(i), true
		}
	}
	return 0, false
}

// Int returns an integer value of any width or signedness, provided it fits
// in an int64.
func (f *File) Int(key string) (int64, bool) {
	kv, ok := f.Lookup(key)
	if !ok {
		return 0, false
	}
	switch v := kv.Value.(type) {
	case int8, int16, int32, int64:
		return asInt64(v), true
	case uint8:
		return int64(v), true
	case uint16:
		return int64(v), true
	case uint32:
		return int64(v), true
	case uint64:
		if v <= math.MaxInt64 {
			return int64(v), true
		}
	}
	return 0, false
}

func asInt64(v any) int64 {
	switch v := v.(type) {
	case int8:
		return int64(v)
	case int16:
		return int64(v)
	case int32:
		return int64(v)
	case int64:
		return v
	}
	return 0
}

// Float returns a FLOAT32 or FLOAT64 value.
func (f *File) Float(key string) (float64, bool) {
	kv, ok := f.Lookup(key)
	if !ok {
		return 0, false
	}
	switch v := kv.Value.(type) {
	case float32:
		return float64(v), true
	case float64:
		return v, true
	}
	return 0, false
}

// Strings returns an array of strings. The slice is shared with the File.
func (f *File) Strings(key string) ([]string, bool) {
	kv, ok := f.Lookup(key)
	if !ok {
		return nil, false
	}
	s, ok := kv.Value.([]string)
	return s, ok
}

// Float32s returns an array of FLOAT32. The slice is shared with the File.
func (f *File) Float32s(key string) ([]float32, bool) {
	kv, ok := f.Lookup(key)
	if !ok {
		return nil, false
	}
	s, ok := kv.Value.([]float32)
	return s, ok
}

// Int32s returns an array of INT32. The slice is shared with the File.
func (f *File) Int32s(key string) ([]int32, bool) {
	kv, ok := f.Lookup(key)
	if !ok {
		return nil, false
	}
	s, ok := kv.Value.([]int32)
	return s, ok
}

// ArrayLen returns the number of elements of an array value.
func (f *File) ArrayLen(key string) (int, bool) {
	kv, ok := f.Lookup(key)
	if !ok || kv.Type != ValueArray {
		return 0, false
	}
	return arrayLen(kv.Value)
}

func arrayLen(v any) (int, bool) {
	switch s := v.(type) {
	case []uint8:
		return len(s), true
	case []int8:
		return len(s), true
	case []uint16:
		return len(s), true
	case []int16:
		return len(s), true
	case []uint32:
		return len(s), true
	case []int32:
		return len(s), true
	case []float32:
		return len(s), true
	case []bool:
		return len(s), true
	case []string:
		return len(s), true
	case []uint64:
		return len(s), true
	case []int64:
		return len(s), true
	case []float64:
		return len(s), true
	}
	return 0, false
}

// Architecture returns general.architecture, or "" if absent.
func (f *File) Architecture() string {
	s, _ := f.String("general.architecture")
	return s
}

// Tensor returns the tensor named name.
func (f *File) Tensor(name string) (TensorInfo, bool) {
	for _, t := range f.Tensors {
		if t.Name == name {
			return t, true
		}
	}
	return TensorInfo{}, false
}

// ParamCount is the total number of tensor elements.
func (f *File) ParamCount() uint64 {
	var n uint64
	for _, t := range f.Tensors {
		n += t.Elements()
	}
	return n
}

// TensorDataSize is the total number of tensor data bytes, padding excluded.
func (f *File) TensorDataSize() uint64 {
	var n uint64
	for _, t := range f.Tensors {
		n += t.Size
	}
	return n
}
