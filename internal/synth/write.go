package synth

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/lumenllm/lumen/internal/gguf"
)

// ChatTemplate is written as tokenizer.chat_template: ChatML, with
// <|im_start|>/<|im_end|> as plain text (the vocabulary has no special
// tokens for them, so they tokenize like any other characters). With
// add_generation_prompt it ends with "<|im_start|>assistant\n" for the model
// to continue. llama.cpp's built-in template detection recognises it as
// "chatml".
const ChatTemplate = `{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}`

// Write writes the model described by cfg to w as GGUF.
func Write(w io.Writer, cfg Config) error {
	return write(w, cfg, nil)
}

// WriteFile writes the model to path atomically: it is generated into a
// temporary file in the same directory, synced, then renamed over path, so
// path never holds a partial model. progress, if not nil, is called as
// tensor data is written with the bytes done and the total.
func WriteFile(path string, cfg Config, progress func(done, total int64)) error {
	return writeFile(path, cfg, progress, nil)
}

// writeFile is WriteFile with a hook to wrap the temporary file's writer,
// which lets tests inject a failure part way through.
func writeFile(path string, cfg Config, progress func(done, total int64), wrap func(io.Writer) io.Writer) (err error) {
	if err := cfg.Validate(); err != nil {
		return err
	}
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	var w io.Writer = tmp
	if wrap != nil {
		w = wrap(w)
	}
	if err := write(w, cfg, progress); err != nil {
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	return nil
}

func write(w io.Writer, cfg Config, progress func(done, total int64)) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	voc, err := buildVocab(cfg.Vocab)
	if err != nil {
		return err
	}
	if cfg.FIM {
		// The last pieces are no other piece's halves, so they can go.
		for i, text := range FIMTokens {
			id := cfg.Vocab - 3 + i
			voc.tokens[id], voc.types[id], voc.scores[id] = text, tokControl, 0
		}
	}
	gw := gguf.NewWriter()
	if err := addMetadata(gw, cfg, voc); err != nil {
		return err
	}
	plan := cfg.tensors()
	var total int64
	for _, t := range plan {
		size, err := gguf.TensorSize(t.typ, t.dims)
		if err != nil {
			return fmt.Errorf("synth: tensor %s: %w", t.name, err)
		}
		total += int64(size)
	}
	g := newGenerator(cfg, &progressCounter{fn: progress, total: total})
	for i, t := range plan {
		if err := gw.AddTensor(t.name, t.typ, t.dims, g.fill(t, uint64(i))); err != nil {
			return fmt.Errorf("synth: %w", err)
		}
	}
	if _, err := gw.WriteTo(w); err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	return nil
}

func addMetadata(gw *gguf.Writer, cfg Config, voc vocabulary) error {
	name := cfg.Name
	if name == "" {
		name = "lumen-synth"
	}
	template := cfg.ChatTemplate
	if template == "" {
		template = ChatTemplate
	}
	u32 := func(v int) uint32 { return uint32(v) } // Validate bounded every int
	kvs := []struct {
		key string
		val any
	}{
		{"general.architecture", "llama"},
		{"general.name", name},
		{"general.file_type", cfg.FileType()},
		{"llama.context_length", u32(cfg.Context)},
		{"llama.embedding_length", u32(cfg.Embd)},
		{"llama.block_count", u32(cfg.Layers)},
		{"llama.feed_forward_length", u32(cfg.FF)},
		{"llama.attention.head_count", u32(cfg.Heads)},
		{"llama.attention.head_count_kv", u32(cfg.KVHeads)},
		// llama.cpp insists n_rot equals the head dimension for llama.
		{"llama.rope.dimension_count", u32(cfg.HeadDim())},
		{"llama.rope.freq_base", cfg.RopeBase},
		{"llama.attention.layer_norm_rms_epsilon", cfg.NormEps},
		{"llama.vocab_size", u32(cfg.Vocab)},
		{"tokenizer.ggml.model", "llama"},
		{"tokenizer.ggml.tokens", voc.tokens},
		{"tokenizer.ggml.scores", voc.scores},
		{"tokenizer.ggml.token_type", voc.types},
		{"tokenizer.ggml.bos_token_id", uint32(BOSID)},
		{"tokenizer.ggml.eos_token_id", uint32(EOSID)},
		{"tokenizer.ggml.unknown_token_id", uint32(UnkID)},
		{"tokenizer.ggml.add_bos_token", true},
		{"tokenizer.ggml.add_eos_token", false},
		{"tokenizer.chat_template", template},
	}
	if cfg.FIM {
		for i, key := range []string{"tokenizer.ggml.fim_pre_token_id", "tokenizer.ggml.fim_suf_token_id", "tokenizer.ggml.fim_mid_token_id"} {
			kvs = append(kvs, struct {
				key string
				val any
			}{key, uint32(cfg.Vocab - 3 + i)})
		}
	}
	if cfg.Type == gguf.TypeQ8_0 {
		kvs = append(kvs, struct {
			key string
			val any
		}{"general.quantization_version", uint32(2)})
	}
	for _, kv := range kvs {
		if err := gw.AddKV(kv.key, kv.val); err != nil {
			return fmt.Errorf("synth: %w", err)
		}
	}
	return nil
}
