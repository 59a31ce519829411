package gguf

import (
	"fmt"
	"strings"
)

// GGMLType is a ggml tensor element type as stored in a tensor info.
type GGMLType uint32

// The ggml tensor types that may appear in a GGUF file. Ids 4, 5, 31-33 and
// 36-38 belong to removed types and are invalid, as is anything >= 40.
const (
	TypeF32     GGMLType = 0
	TypeF16     GGMLType = 1
	TypeQ4_0    GGMLType = 2
	TypeQ4_1    GGMLType = 3
	TypeQ5_0    GGMLType = 6
	TypeQ5_1    GGMLType = 7
	TypeQ8_0    GGMLType = 8
	TypeQ8_1    GGMLType = 9
	TypeQ2_K    GGMLType = 10
	TypeQ3_K    GGMLType = 11
	TypeQ4_K    GGMLType = 12
	TypeQ5_K    GGMLType = 13
	TypeQ6_K    GGMLType = 14
	TypeQ8_K    GGMLType = 15
	TypeIQ2_XXS GGMLType = 16
	TypeIQ2_XS  GGMLType = 17
	TypeIQ3_XXS GGMLType = 18
	TypeIQ1_S   GGMLType = 19
	TypeIQ4_NL  GGMLType = 20
	TypeIQ3_S   GGMLType = 21
	TypeIQ2_S   GGMLType = 22
	TypeIQ4_XS  GGMLType = 23
	TypeI8      GGMLType = 24
	TypeI16     GGMLType = 25
	TypeI32     GGMLType = 26
	TypeI64     GGMLType = 27
	TypeF64     GGMLType = 28
	TypeIQ1_M   GGMLType = 29
	TypeBF16    GGMLType = 30
	TypeTQ1_0   GGMLType = 34
	TypeTQ2_0   GGMLType = 35
	TypeMXFP4   GGMLType = 39

	// typeCount bounds the id space; ggml's GGML_TYPE_COUNT.
	typeCount GGMLType = 40
)

// typeTraits mirrors ggml's type_traits table (name, elements per block,
// bytes per block). The numbers were checked against sizeof(block_*) in
// ggml-common.h of the llama.cpp build Lumen pins. A switch rather than a
// table keeps the data immutable.
func typeTraits(t GGMLType) (name string, block, size uint64, ok bool) {
	switch t {
	case TypeF32:
		return "F32", 1, 4, true
	case TypeF16:
		return "F16", 1, 2, true
	case TypeQ4_0:
		return "Q4_0", 32, 18, true
	case TypeQ4_1:
		return "Q4_1", 32, 20, true
	case TypeQ5_0:
		return "Q5_0", 32, 22, true
	case TypeQ5_1:
		return "Q5_1", 32, 24, true
	case TypeQ8_0:
		return "Q8_0", 32, 34, true
	case TypeQ8_1:
		return "Q8_1", 32, 36, true
	case TypeQ2_K:
		return "Q2_K", 256, 84, true
	case TypeQ3_K:
		return "Q3_K", 256, 110, true
	case TypeQ4_K:
		return "Q4_K", 256, 144, true
	case TypeQ5_K:
		return "Q5_K", 256, 176, true
	case TypeQ6_K:
		return "Q6_K", 256, 210, true
	case TypeQ8_K:
		return "Q8_K", 256, 292, true
	case TypeIQ2_XXS:
		return "IQ2_XXS", 256, 66, true
	case TypeIQ2_XS:
		return "IQ2_XS", 256, 74, true
	case TypeIQ3_XXS:
		return "IQ3_XXS", 256, 98, true
	case TypeIQ1_S:
		return "IQ1_S", 256, 50, true
	case TypeIQ4_NL:
		return "IQ4_NL", 32, 18, true
	case TypeIQ3_S:
		return "IQ3_S", 256, 110, true
	case TypeIQ2_S:
		return "IQ2_S", 256, 82, true
	case TypeIQ4_XS:
		return "IQ4_XS", 256, 136, true
	case TypeI8:
		return "I8", 1, 1, true
	case TypeI16:
		return "I16", 1, 2, true
	case TypeI32:
		return "I32", 1, 4, true
	case TypeI64:
		return "I64", 1, 8, true
	case TypeF64:
		return "F64", 1, 8, true
	case TypeIQ1_M:
		return "IQ1_M", 256, 56, true
	case TypeBF16:
		return "BF16", 1, 2, true
	case TypeTQ1_0:
		return "TQ1_0", 256, 54, true
	case TypeTQ2_0:
		return "TQ2_0", 256, 66, true
	case TypeMXFP4:
		return "MXFP4", 32, 17, true
	}
	return "", 0, 0, false
}

// Valid reports whether t is a ggml type that a GGUF file may use.
func (t GGMLType) Valid() bool {
	_, _, _, ok := typeTraits(t)
	return ok
}

// String returns ggml's name for t in upper case ("F16", "Q8_0"), or
// "GGMLType(n)" for an invalid id.
func (t GGMLType) String() string {
	if name, _, _, ok := typeTraits(t); ok {
		return name
	}
	return fmt.Sprintf("GGMLType(%d)", uint32(t))
}

// BlockSize is the number of elements in one block of t (1 for plain
// types), or 0 if t is invalid.
func (t GGMLType) BlockSize() uint64 {
	_, b, _, _ := typeTraits(t)
	return b
}

// TypeSize is the number of bytes in one block of t, or 0 if t is invalid.
func (t GGMLType) TypeSize() uint64 {
	_, _, s, _ := typeTraits(t)
	return s
}

// ParseType returns the type named s, ignoring case ("f16", "Q8_0").
func ParseType(s string) (GGMLType, error) {
	for t := range typeCount {
		if name, _, _, ok := typeTraits(t); ok && strings.EqualFold(name, s) {
			return t, nil
		}
	}
	return 0, fmt.Errorf("gguf: parse type %q: %w", s, ErrTensorType)
}

// ValueType is the type tag of a metadata value.
type ValueType uint32

// The GGUF metadata value types.
const (
	ValueUint8   ValueType = 0
	ValueInt8    ValueType = 1
	ValueUint16  ValueType = 2
	ValueInt16   ValueType = 3
	ValueUint32  ValueType = 4
	ValueInt32   ValueType = 5
	ValueFloat32 ValueType = 6
	ValueBool    ValueType = 7
	ValueString  ValueType = 8
	ValueArray   ValueType = 9
	ValueUint64  ValueType = 10
	ValueInt64   ValueType = 11
	ValueFloat64 ValueType = 12
)

// Valid reports whether v is a defined value type.
func (v ValueType) Valid() bool { return v <= ValueFloat64 }

// String returns the GGUF spec's name for v.
func (v ValueType) String() string {
	switch v {
	case ValueUint8:
		return "UINT8"
	case ValueInt8:
		return "INT8"
	case ValueUint16:
		return "UINT16"
	case ValueInt16:
		return "INT16"
	case ValueUint32:
		return "UINT32"
	case ValueInt32:
		return "INT32"
	case ValueFloat32:
		return "FLOAT32"
	case ValueBool:
		return "BOOL"
	case ValueString:
		return "STRING"
	case ValueArray:
		return "ARRAY"
	case ValueUint64:
		return "UINT64"
	case ValueInt64:
		return "INT64"
	case ValueFloat64:
		return "FLOAT64"
	}
	return fmt.Sprintf("ValueType(%d)", uint32(v))
}

// size is the encoded size of one scalar of type v; strings report their
// minimum (the 8-byte length) and arrays 0.
func (v ValueType) size() uint64 {
	switch v {
	case ValueUint8, ValueInt8, ValueBool:
		return 1
	case ValueUint16, ValueInt16:
		return 2
	case ValueUint32, ValueInt32, ValueFloat32:
		return 4
	case ValueUint64, ValueInt64, ValueFloat64, ValueString:
		return 8
	}
	return 0
}
