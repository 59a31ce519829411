package gguf

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every validation failure wraps exactly one of these, so
// callers branch with errors.Is; a *FormatError adds where it happened.
var (
	// ErrBadMagic: the file does not start with "GGUF".
	ErrBadMagic = errors.New("not a GGUF file (bad magic)")
	// ErrUnsupportedVersion: the version is not 2 or 3.
	ErrUnsupportedVersion = errors.New("unsupported GGUF version")
	// ErrTruncated: the file ends in the middle of a field.
	ErrTruncated = errors.New("unexpected end of file")
	// ErrLimit: a count or length is over a Limits bound or claims more
	// bytes than the file has left.
	ErrLimit = errors.New("count or length over limit")
	// ErrBadString: a key or tensor name is empty, not UTF-8, holds a NUL
	// or is too long.
	ErrBadString = errors.New("invalid key or name")
	// ErrDuplicate: a key or tensor name appears twice.
	ErrDuplicate = errors.New("duplicate key or name")
	// ErrValueType: a metadata value type is undefined, a nested array, or
	// (in the writer) a Go type with no GGUF encoding.
	ErrValueType = errors.New("invalid value type")
	// ErrBadValue: a value's bytes are not valid for its type (a bool that
	// is neither 0 nor 1).
	ErrBadValue = errors.New("invalid value")
	// ErrMetadata: well-formed metadata that contradicts itself in a way
	// llama.cpp does not check (e.g. fewer token scores than tokens, which
	// makes it read past the end of an array).
	ErrMetadata = errors.New("inconsistent metadata")
	// ErrTensorType: a tensor's ggml type id is unknown or removed.
	ErrTensorType = errors.New("invalid tensor type")
	// ErrShape: a tensor has 0 or more than 4 dimensions, a zero
	// dimension, or a row length that is not a multiple of its block size.
	ErrShape = errors.New("invalid tensor shape")
	// ErrShapeOverflow: a tensor's element or byte count does not fit in
	// an int64.
	ErrShapeOverflow = errors.New("tensor shape overflows")
	// ErrAlignment: general.alignment is not a uint32 power of two, or a
	// tensor offset is not a multiple of it.
	ErrAlignment = errors.New("bad alignment")
	// ErrOutOfBounds: a tensor's data extends past the end of the file.
	ErrOutOfBounds = errors.New("tensor data out of bounds")
	// ErrOverlap: two tensors' data ranges overlap.
	ErrOverlap = errors.New("tensor data overlaps")
	// ErrFillSize: a Writer fill function wrote a different number of
	// bytes than the tensor's shape and type require.
	ErrFillSize = errors.New("tensor fill wrote wrong number of bytes")
)

// FormatError reports a validation failure in a GGUF file: which field, at
// which byte offset, and which sentinel it amounts to.
type FormatError struct {
	// Offset is the byte offset in the file where the field starts.
	Offset int64
	// Field names the field, e.g. `key "general.name" value` or
	// `tensor "blk.0.attn_q.weight" dims`.
	Field string
	// Err is the sentinel (ErrTruncated, ErrLimit, ...).
	Err error
	// Detail says what exactly was wrong, e.g. the offending number.
	Detail string
}

func (e *FormatError) Error() string {
	msg := fmt.Sprintf("gguf: %s at offset %d: %v", e.Field, e.Offset, e.Err)
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	return msg
}

// Unwrap returns the sentinel so errors.Is(err, ErrLimit) works.
func (e *FormatError) Unwrap() error { return e.Err }
