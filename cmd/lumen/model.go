package main

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/lumenllm/lumen/internal/engine/llama"
	"github.com/lumenllm/lumen/internal/gguf"
	"github.com/lumenllm/lumen/internal/synth"
)

// defaultPreset is the model `lumen` generates and serves when no --model
// is given.
const defaultPreset = "small"

func runModel(ctx context.Context, args []string, e env) error {
	if len(args) > 0 && isHelp(args[0]) {
		fmt.Fprintln(e.stdout, "usage: lumen model synth|info [flags]   (lumen model COMMAND --help for its flags)")
		return nil
	}
	if len(args) == 0 {
		return usageError{"usage: lumen model synth|info"}
	}
	switch args[0] {
	case "synth":
		return runModelSynth(args[1:], e)
	case "info":
		return runModelInfo(args[1:], e)
	default:
		return usageError{fmt.Sprintf("unknown model command %q (want synth or info)", args[0])}
	}
}

// synthFlags are the model-shape flags shared by `model synth` and
// `bench engine`; zero values keep the preset's.
type synthFlags struct {
	preset                                          string
	layers, embd, heads, kvHeads, ff, ctxLen, vocab int
	typ                                             string
	seed                                            uint64
}

func (s *synthFlags) register(fs interface {
	StringVar(*string, string, string, string)
	IntVar(*int, string, int, string)
	Uint64Var(*uint64, string, uint64, string)
}, defPreset string) {
	fs.StringVar(&s.preset, "preset", defPreset, "model shape preset: "+strings.Join(synth.Presets(), ", "))
	fs.IntVar(&s.layers, "layers", 0, "transformer blocks (0: preset's)")
	fs.IntVar(&s.embd, "embd", 0, "embedding size (0: preset's)")
	fs.IntVar(&s.heads, "heads", 0, "attention heads (0: preset's)")
	fs.IntVar(&s.kvHeads, "kv-heads", 0, "key/value heads (0: preset's)")
	fs.IntVar(&s.ff, "ff", 0, "feed-forward size (0: preset's)")
	fs.IntVar(&s.ctxLen, "ctx", 0, "training context length (0: preset's)")
	fs.IntVar(&s.vocab, "vocab", 0, "vocabulary size (0: preset's)")
	fs.StringVar(&s.typ, "type", "", "weight type f32, f16 or q8_0 (empty: preset's)")
	fs.Uint64Var(&s.seed, "seed", 0, "random seed for the weights (0: preset's)")
}

func (s *synthFlags) config() (synth.Config, error) {
	cfg, err := synth.Preset(s.preset)
	if err != nil {
		return cfg, usageError{err.Error()}
	}
	for _, o := range []struct {
		dst *int
		v   int
	}{{&cfg.Layers, s.layers}, {&cfg.Embd, s.embd}, {&cfg.Heads, s.heads}, {&cfg.KVHeads, s.kvHeads}, {&cfg.FF, s.ff}, {&cfg.Context, s.ctxLen}, {&cfg.Vocab, s.vocab}} {
		if o.v != 0 {
			*o.dst = o.v
		}
	}
	if s.typ != "" {
		t, err := gguf.ParseType(s.typ)
		if err != nil {
			return cfg, usageError{err.Error()}
		}
		cfg.Type = t
	}
	if s.seed != 0 {
		cfg.Seed = s.seed
	}
	if err := cfg.Validate(); err != nil {
		return cfg, usageError{err.Error()}
	}
	return cfg, nil
}

func runModelSynth(args []string, e env) error {
	fs := newFlagSet("model synth", "Writes a random-weight Llama-architecture GGUF model (for tests, demos and benchmarks).", e.stderr)
	out := fs.String("out", "", "output path (required)")
	var sf synthFlags
	sf.register(fs, "small")
	if err := parseNoArgs(fs, args, e.getenv); err != nil {
		return err
	}
	if *out == "" {
		return usageError{"model synth: --out is required"}
	}
	cfg, err := sf.config()
	if err != nil {
		return err
	}
	return writeModel(*out, cfg, e)
}

func writeModel(path string, cfg synth.Config, e env) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "generating %s: %d layers, embd %d, %.1fM parameters, %s\n",
		path, cfg.Layers, cfg.Embd, float64(cfg.ParamCount())/1e6, cfg.Type)
	bar := newProgressBar(e.stderr, "writing", e.stderrTTY)
	return synth.WriteFile(path, cfg, func(done, total int64) {
		if total > 0 {
			bar.Set(float64(done) / float64(total))
		}
	})
}

// modelCacheDir is where generated models are kept: dir, or the user
// cache directory's lumen/models.
func modelCacheDir(dir string) (string, error) {
	if dir != "" {
		return dir, nil
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache directory for generated models (set --cache-dir): %w", err)
	}
	return filepath.Join(base, "lumen", "models"), nil
}

// synthPath names a generated model after its preset and a hash of its
// exact configuration, so a changed shape never reuses a stale file.
func synthPath(dir, preset string, cfg synth.Config) string {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s %+v", synthFormat, cfg)
	return filepath.Join(dir, fmt.Sprintf("lumen-%s-%x.gguf", preset, h.Sum64()&0xffffffff))
}

// synthFormat versions the generator's output for synthPath.
const synthFormat = "v1"

// ensureSynth generates cfg at path unless the file already exists.
func ensureSynth(path string, cfg synth.Config, e env) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	return writeModel(path, cfg, e)
}

// ensureModel returns path, or else the default demo model, generating
// it (offline) in the cache directory the first time.
func ensureModel(path, cacheDir string, e env) (string, error) {
	if path != "" {
		return path, nil
	}
	p, cfg, err := demoModelPath(cacheDir)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(p); err != nil {
		fmt.Fprintln(e.stderr, "no --model given: generating Lumen's demo model (random weights, gibberish output) once")
	}
	return p, ensureSynth(p, cfg, e)
}

// demoModelPath is where the demo model lives in the cache (it may not
// exist yet) and its shape.
func demoModelPath(cacheDir string) (string, synth.Config, error) {
	dir, err := modelCacheDir(cacheDir)
	if err != nil {
		return "", synth.Config{}, err
	}
	cfg, err := synth.Preset(defaultPreset)
	if err != nil {
		return "", synth.Config{}, err
	}
	return synthPath(dir, defaultPreset, cfg), cfg, nil
}

// modelName is the model id clients use: name when given, else the
// model file's name without .gguf (that of the demo model without a
// path), known before the model is loaded or generated.
func modelName(name, path, cacheDir string) (string, error) {
	if name != "" {
		return name, nil
	}
	if path == "" {
		p, _, err := demoModelPath(cacheDir)
		if err != nil {
			return "", err
		}
		path = p
	}
	return modelID(path), nil
}

func runModelInfo(args []string, e env) error {
	fs := newFlagSet("model info PATH", "Prints a GGUF model's metadata.", e.stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	rest, err := parseFlags(fs, args, e.getenv)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return usageError{"usage: lumen model info PATH"}
	}
	if err := llama.Init(llama.BackendOptions{LogLevel: llama.LogError}); err != nil {
		return err
	}
	m, err := llama.Load(rest[0], llama.ModelParams{})
	if err != nil {
		return err
	}
	defer m.Close()
	md := m.Metadata()
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(md)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	for _, row := range [][2]string{
		{"path", md.Path},
		{"architecture", md.Architecture},
		{"name", md.Name},
		{"description", md.Description},
		{"parameters", fmt.Sprintf("%d (%.1fM)", md.ParamCount, float64(md.ParamCount)/1e6)},
		{"file size", fmt.Sprintf("%d bytes (%.1f MiB)", md.FileSize, float64(md.FileSize)/(1<<20))},
		{"context (trained)", fmt.Sprint(md.ContextTrain)},
		{"embedding", fmt.Sprint(md.Embedding)},
		{"layers", fmt.Sprint(md.Layers)},
		{"heads / kv heads", fmt.Sprintf("%d / %d", md.Heads, md.KVHeads)},
		{"vocabulary", fmt.Sprint(md.VocabSize)},
		{"bos / eos / eot", fmt.Sprintf("%d / %d / %d", md.BOS, md.EOS, md.EOT)},
		{"end-of-generation", fmt.Sprint(md.EOG)},
		{"chat template", fmt.Sprintf("%d bytes", len(md.ChatTemplate))},
		{"device", m.Device().ID()},
	} {
		fmt.Fprintf(tw, "%s\t%s\n", row[0], row[1])
	}
	return tw.Flush()
}
