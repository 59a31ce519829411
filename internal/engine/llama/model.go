package llama

/*
#include "bridge.h"
*/
import "C"

import (
	"fmt"
	"math"
	"os"
	"runtime/cgo"
	"strconv"
	"sync"
	"unsafe"

	"github.com/lumenllm/lumen/internal/gguf"
)

// AllLayers offloads every layer when used as ModelParams.GPULayers.
const AllLayers = -1

// ModelParams configure Load. The zero value loads on the CPU with mmap.
type ModelParams struct {
	// GPULayers is how many layers to offload to the GPU (AllLayers for
	// all). Zero keeps the model on the CPU.
	GPULayers int
	// MainGPU is the index of the GPU, among GPU devices, that runs the
	// model when GPULayers is not zero.
	MainGPU int
	// NoMmap reads the file into memory instead of mapping it.
	NoMmap bool
	// Progress, when set, is called with values from 0 to 1 while the
	// weights load; returning false cancels the load.
	Progress func(fraction float32) bool
}

// Model is a loaded GGUF model. It is safe for concurrent read-only use
// (tokenization, metadata); contexts created from it must not outlive it.
type Model struct {
	c      *C.struct_llama_model
	vocab  *C.struct_llama_vocab
	meta   Metadata
	device Device
	nVocab int
	// ascii marks plain-ASCII tokens for constrained sampling (C memory,
	// read by llama.cpp-side code; freed by Close).
	ascii *C.uint8_t

	controlOnce sync.Once
	control     []ControlToken
}

// headDims are the sizes of one attention head's key and value: the
// architecture's attention.key_length and value_length, or the embedding
// split over the heads.
func (m *Model) headDims() (k, v int) {
	split := 0
	if m.meta.Heads > 0 {
		split = m.meta.Embedding / m.meta.Heads
	}
	dim := func(key string) int {
		if n, err := strconv.Atoi(m.meta.KV[m.meta.Architecture+".attention."+key]); err == nil && n > 0 {
			return n
		}
		return split
	}
	return dim("key_length"), dim("value_length")
}

// Metadata describes a loaded model.
type Metadata struct {
	Path          string
	Architecture  string
	Name          string
	Description   string
	ParamCount    uint64
	FileSize      int64
	TensorBytes   uint64
	ContextTrain  int
	Embedding     int
	Layers        int
	Heads         int
	KVHeads       int
	VocabSize     int
	ChatTemplate  string
	BOS, EOS, EOT Token
	// EOG lists every end-of-generation token of the vocabulary.
	EOG []Token
	// AddBOS is whether the tokenizer prepends BOS to prompts.
	AddBOS bool
	// Pooling is the pooling an embedding model declares; "" for a
	// generative model.
	Pooling Pooling
	// KV holds every metadata key/value as llama.cpp renders it (arrays
	// are summarised by llama.cpp, not expanded).
	KV map[string]string
}

//export lumenLoadProgress
func lumenLoadProgress(progress C.float, handle C.uintptr_t) C.bool {
	fn := cgo.Handle(handle).Value().(func(float32) bool)
	return C.bool(fn(float32(progress)))
}

// Load validates the GGUF file at path in Go (so a malformed file never
// reaches llama.cpp's parser) and then loads it with llama.cpp.
func Load(path string, p ModelParams) (*Model, error) {
	f, err := gguf.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("llama: validate %s: %w", path, err)
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("llama: %w", err)
	}

	params := C.llama_model_default_params()
	params.use_mmap = C.bool(!p.NoMmap)
	dev, device, err := placeDevice(p)
	if err != nil {
		return nil, err
	}

	// An explicit device list makes placement deterministic: exactly the
	// chosen GPU, or no GPU at all.
	devs := (*C.ggml_backend_dev_t)(C.calloc(2, C.size_t(unsafe.Sizeof(C.ggml_backend_dev_t(nil)))))
	defer C.free(unsafe.Pointer(devs))
	if p.GPULayers != 0 {
		unsafe.Slice(devs, 2)[0] = dev
		n := p.GPULayers
		if n < 0 {
			n = math.MaxInt32
		}
		params.n_gpu_layers = C.int32_t(n)
		params.split_mode = C.LLAMA_SPLIT_MODE_NONE
		params.main_gpu = 0
	} else {
		params.n_gpu_layers = 0
	}
	params.devices = devs

	var handle cgo.Handle
	cancelled := false
	if p.Progress != nil {
		handle = cgo.NewHandle(func(v float32) bool {
			ok := p.Progress(v)
			cancelled = !ok
			return ok
		})
		defer handle.Delete()
	}

	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	cm := C.lumen_model_load(cpath, params, C.uintptr_t(handle))
	if cm == nil {
		if cancelled {
			return nil, fmt.Errorf("llama: load %s: %w", path, ErrLoadCancelled)
		}
		return nil, fmt.Errorf("llama: load %s: %w", path, ErrLoad)
	}
	m := &Model{c: cm, vocab: C.llama_model_get_vocab(cm), device: device}
	m.nVocab = int(C.llama_vocab_n_tokens(m.vocab))
	m.meta = m.readMetadata(path, st.Size(), f)
	m.ascii = C.lumen_vocab_ascii(m.vocab)
	if m.ascii == nil {
		C.llama_model_free(cm)
		return nil, fmt.Errorf("llama: load %s: out of memory for the vocabulary table", path)
	}
	return m, nil
}

func (m *Model) readMetadata(path string, size int64, f *gguf.File) Metadata {
	md := Metadata{
		Path:         path,
		FileSize:     size,
		ParamCount:   uint64(C.llama_model_n_params(m.c)),
		TensorBytes:  uint64(C.llama_model_size(m.c)),
		ContextTrain: int(C.llama_model_n_ctx_train(m.c)),
		Embedding:    int(C.llama_model_n_embd(m.c)),
		Layers:       int(C.llama_model_n_layer(m.c)),
		Heads:        int(C.llama_model_n_head(m.c)),
		KVHeads:      int(C.llama_model_n_head_kv(m.c)),
		VocabSize:    m.nVocab,
		BOS:          Token(C.llama_vocab_bos(m.vocab)),
		EOS:          Token(C.llama_vocab_eos(m.vocab)),
		EOT:          Token(C.llama_vocab_eot(m.vocab)),
		AddBOS:       bool(C.llama_vocab_get_add_bos(m.vocab)),
		KV:           map[string]string{},
	}
	md.Architecture, _ = f.String("general.architecture")
	md.Name, _ = f.String("general.name")
	if t := C.llama_model_chat_template(m.c, nil); t != nil {
		md.ChatTemplate = C.GoString(t)
	}
	buf := make([]byte, 256)
	md.Description = cString(buf, func(p *C.char, n C.size_t) C.int32_t { return C.llama_model_desc(m.c, p, n) })
	for i := range int(C.llama_model_meta_count(m.c)) {
		ci := C.int32_t(i)
		k := cString(buf, func(p *C.char, n C.size_t) C.int32_t { return C.llama_model_meta_key_by_index(m.c, ci, p, n) })
		v := cString(buf, func(p *C.char, n C.size_t) C.int32_t { return C.llama_model_meta_val_str_by_index(m.c, ci, p, n) })
		md.KV[k] = v
	}
	md.Pooling = modelPooling(md.Architecture, md.KV)
	for t := range m.nVocab {
		if C.llama_vocab_is_eog(m.vocab, C.llama_token(t)) {
			md.EOG = append(md.EOG, Token(t))
		}
	}
	return md
}

// cString calls a llama.cpp snprintf-style getter, growing buf as needed,
// and copies the result into Go memory.
func cString(buf []byte, get func(*C.char, C.size_t) C.int32_t) string {
	for {
		n := get((*C.char)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)))
		if n < 0 {
			return ""
		}
		if int(n) < len(buf) {
			return string(buf[:n])
		}
		buf = make([]byte, int(n)+1)
	}
}

// Metadata returns the model's metadata.
func (m *Model) Metadata() Metadata { return m.meta }

// PlacementDevice is the device Load(path, p) will run the model on: the
// p.MainGPU-th GPU when layers are offloaded, else the CPU. It lets a
// caller name the device (in telemetry resources, say) before loading.
// Backends must have been initialised (Init).
func PlacementDevice(p ModelParams) (Device, error) {
	_, d, err := placeDevice(p)
	return d, err
}

// placeDevice picks the device for p: a GPU when layers are offloaded,
// else the first CPU device in the registry, where llama.cpp does its CPU
// work.
func placeDevice(p ModelParams) (C.ggml_backend_dev_t, Device, error) {
	if p.GPULayers == 0 {
		dev, d := findDevice(DeviceCPU, 0)
		return dev, d, nil
	}
	dev, d := findDevice(DeviceGPU, p.MainGPU)
	if dev == nil || p.MainGPU < 0 {
		return nil, Device{}, fmt.Errorf("llama: gpu %d requested, %d GPU device(s) present: %w", p.MainGPU, countDevices(DeviceGPU), ErrNoGPU)
	}
	return dev, d, nil
}

// Device returns the device that runs the model's offloaded layers (the
// CPU when nothing is offloaded).
func (m *Model) Device() Device { return m.device }

// VocabSize is the number of tokens in the vocabulary.
func (m *Model) VocabSize() int { return m.nVocab }

// IsEOG reports whether tok ends generation.
func (m *Model) IsEOG(tok Token) bool {
	if int(tok) < 0 || int(tok) >= m.nVocab {
		return false
	}
	return bool(C.llama_vocab_is_eog(m.vocab, C.llama_token(tok)))
}

// Close frees the model. Contexts created from it must be closed first.
func (m *Model) Close() error {
	if m.c == nil {
		return ErrClosed
	}
	C.llama_model_free(m.c)
	C.free(unsafe.Pointer(m.ascii))
	m.c = nil
	m.vocab = nil
	m.ascii = nil
	return nil
}
