package llama

import "errors"

// Sentinel errors. Callers branch on them with errors.Is; messages carry
// the details.
var (
	// ErrNoBackendDir: the backend directory does not exist.
	ErrNoBackendDir = errors.New("backend directory not found")
	// ErrNoBackends: the backend directory holds no libggml-NAME.so.
	ErrNoBackends = errors.New("no ggml backend library in directory")
	// ErrBackendLoad: a backend library in the backend directory did not load.
	ErrBackendLoad = errors.New("backend library failed to load")
	// ErrBackendMismatch: the backend directory was built from other ggml
	// sources than the binary (or does not say which).
	ErrBackendMismatch = errors.New("backend built from different ggml sources")
	// ErrNoGPU: GPU offload was requested but no GPU backend/device exists.
	ErrNoGPU = errors.New("no GPU device available")
	// ErrLoad: llama.cpp refused the model file.
	ErrLoad = errors.New("llama.cpp failed to load the model")
	// ErrLoadCancelled: the load progress callback asked to stop.
	ErrLoadCancelled = errors.New("model load cancelled")
	// ErrContext: llama.cpp could not create an inference context.
	ErrContext = errors.New("llama.cpp failed to create a context")
	// ErrNoKVSlot: the KV cache has no room for the batch (decode returned 1).
	ErrNoKVSlot = errors.New("no KV cache slot for batch")
	// ErrDecodeAborted: decode was aborted.
	ErrDecodeAborted = errors.New("decode aborted")
	// ErrDecode: decode failed inside llama.cpp.
	ErrDecode = errors.New("decode failed")
	// ErrBatchFull: a token was added to a batch that has no room left.
	ErrBatchFull = errors.New("batch is full")
	// ErrTokenize: the text could not be tokenized.
	ErrTokenize = errors.New("tokenize failed")
	// ErrBadToken: a token id outside the vocabulary.
	ErrBadToken = errors.New("token id out of range")
	// ErrSeq: a sequence id outside the context's sequences.
	ErrSeq = errors.New("sequence id out of range")
	// ErrState: a sequence's cells could not be saved or restored.
	ErrState = errors.New("sequence state not saved or restored")
	// ErrClosed: the handle was already closed.
	ErrClosed = errors.New("handle closed")
)
