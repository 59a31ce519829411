// Package gguf owns Lumen's handling of the GGUF model file format: a
// defensive reader that validates every header field of a GGUF v2/v3 file
// before any native code (llama.cpp) is allowed to parse it, and a streaming
// writer used to produce model files.
//
// The reader never trusts a count or a length: each is checked against
// [Limits] and against the bytes actually left in the file before anything is
// allocated, so a hostile file costs at most a bounded amount of memory and
// yields a [*FormatError] naming the offending field instead of a panic.
// Errors wrap sentinel values (ErrTruncated, ErrLimit, ...) so callers can
// branch with errors.Is.
//
// Layout of a GGUF file (all integers little endian):
//
//	"GGUF" | u32 version | u64 tensor_count | u64 kv_count
//	kv_count × (string key | u32 value_type | value)
//	tensor_count × (string name | u32 n_dims | n_dims × u64 ne | u32 ggml_type | u64 offset)
//	zero padding to general.alignment (default 32)
//	tensor data; each tensor starts at data_start+offset
//
// A string is a u64 byte length followed by the bytes. An array value is a
// u32 element type, a u64 count and the elements.
package gguf
