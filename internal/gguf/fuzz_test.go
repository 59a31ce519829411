package gguf

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// FuzzRead checks that Read never panics and that anything it accepts is
// safe to hand to a loader: every tensor lies inside the file and has the
// size its shape implies. Rejections must be *FormatError, since a bytes.Reader never
// fails.
func FuzzRead(f *testing.F) {
	f.Add(validRaw().build())
	f.Add(rawFile{kvs: []rawKV{
		{AlignmentKey, 4, le32(64)},
		{keyTokens, 9, arr(8, 3, gstr("<unk>"), gstr("<s>"), gstr("▁a"))},
		{keyScores, 9, arr(6, 3, f32(0), f32(0), f32(-1))},
		{keyTokenType, 9, arr(5, 3, le32(2), le32(3), le32(1))},
		{"b", 9, arr(7, 2, []byte{0, 1})},
	}, tensors: []rawTensor{{"q", []uint64{32, 2}, 8, 0}}, align: 64, dataLen: 68}.build())
	f.Add(rawFile{nKVs: ptr(1 << 62)}.build())
	f.Add(rawFile{tensors: []rawTensor{{"t", []uint64{16}, 0, 0}, {"u", []uint64{4}, 0, 32}}, dataLen: 64}.build())
	f.Add(rawFile{kvs: []rawKV{{"a", 9, arr(9, 1, arr(0, 1, []byte{1}))}}}.build())

	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Read(bytes.NewReader(data), int64(len(data)), DefaultLimits())
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is %T, not *FormatError", err, err)
			}
			return
		}
		for _, ti := range file.Tensors {
			start := uint64(file.DataOffset) + ti.Offset
			if start+ti.Size > uint64(len(data)) || start+ti.Size < start {
				t.Fatalf("tensor %q [%d,+%d) outside %d-byte file", ti.Name, start, ti.Size, len(data))
			}
			if size, err := TensorSize(ti.Type, ti.Dims); err != nil || size != ti.Size {
				t.Fatalf("tensor %q: size %d, recomputed %d %v", ti.Name, ti.Size, size, err)
			}
		}
	})
}

// TestFuzzCorpus pins the meaning of the committed seed corpus: entries
// named valid-* parse, the rest are rejected.
func TestFuzzCorpus(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzRead")
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) == 0 {
		t.Fatal("empty seed corpus")
	}
	for _, e := range ents {
		t.Run(e.Name(), func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
			if len(lines) != 2 || lines[0] != "go test fuzz v1" {
				t.Fatalf("not a one-value corpus file: %q", lines)
			}
			lit := strings.TrimSuffix(strings.TrimPrefix(lines[1], "[]byte("), ")")
			data, err := strconv.Unquote(lit)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Read(strings.NewReader(data), int64(len(data)), DefaultLimits())
			if want := strings.HasPrefix(e.Name(), "valid-"); (err == nil) != want {
				t.Errorf("have error %v, want valid=%v", err, want)
			}
		})
	}
}
