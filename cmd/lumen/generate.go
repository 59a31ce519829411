package main

import (
	"context"
	"flag"
	"fmt"
	"runtime"
	"time"

	"github.com/lumenllm/lumen/internal/engine"
	"github.com/lumenllm/lumen/internal/engine/llama"
)

// loadFlags are the model-loading flags shared by commands that load one.
type loadFlags struct {
	model         string
	cacheDir      string
	threads       int
	ctxSize       int
	gpuLayers     gpuLayers
	mainGPU       int
	allowFallback bool
	backendDir    string
	llamaLog      string
	threadpool    bool
	poll          int
	cacheTypeK    string
	cacheTypeV    string
	// backendErr is why lib/ beside the binary did not load (a warning
	// at the time), kept to explain a later missing GPU.
	backendErr error
}

func (l *loadFlags) register(fs interface {
	StringVar(*string, string, string, string)
	IntVar(*int, string, int, string)
	BoolVar(*bool, string, bool, string)
	Var(flag.Value, string, string)
}) {
	fs.StringVar(&l.model, "model", "", "GGUF model path (default: Lumen's generated demo model, created once in --cache-dir)")
	fs.StringVar(&l.cacheDir, "cache-dir", "", "directory for generated models (default: the user cache dir + /lumen/models)")
	fs.IntVar(&l.threads, "threads", runtime.NumCPU(), "CPU threads for inference")
	fs.BoolVar(&l.threadpool, "threadpool", true, "keep a persistent pool of --threads CPU workers for the context (false: ggml starts its workers on every step)")
	fs.IntVar(&l.poll, "poll", llama.DefaultPoll, "how long idle pool workers spin before sleeping, 0-100 (0: sleep at once)")
	fs.StringVar(&l.cacheTypeK, "cache-type-k", "f16", "KV cache type of keys: f16, q8_0 or q4_0 (quantized: less memory per token)")
	fs.StringVar(&l.cacheTypeV, "cache-type-v", "f16", "KV cache type of values: f16, q8_0 or q4_0")
	fs.IntVar(&l.ctxSize, "ctx-size", 4096, "KV cache size in tokens (capped at the model's trained context)")
	fs.Var(&l.gpuLayers, "gpu-layers", "layers to offload to the GPU: a number, all (or -1), or auto (all when a GPU is present, else the CPU)")
	fs.IntVar(&l.mainGPU, "main-gpu", 0, "GPU index that runs the model (as listed by lumen devices)")
	fs.BoolVar(&l.allowFallback, "allow-cpu-fallback", false, "run on the CPU when --gpu-layers asks for a GPU that is not there (default: fail)")
	fs.StringVar(&l.backendDir, "backend-dir", "", "directory of loadable ggml backends such as the CUDA backend from make cuda (default: lib/ beside the lumen binary, when present)")
	fs.StringVar(&l.llamaLog, "llama-log", "error", "llama.cpp log level: debug, info, warn, error, none")
}

func (l *loadFlags) logLevel() (llama.LogLevel, error) {
	switch l.llamaLog {
	case "debug":
		return llama.LogDebug, nil
	case "info":
		return llama.LogInfo, nil
	case "warn":
		return llama.LogWarn, nil
	case "error":
		return llama.LogError, nil
	case "none":
		return llama.LogNone, nil
	}
	return 0, usageError{fmt.Sprintf("--llama-log %q: want debug, info, warn, error or none", l.llamaLog)}
}

// load initialises llama.cpp (loading GPU backends), decides where the
// model runs and loads it with a progress bar. warn reports problems that
// do not stop the load (a backend that did not load, a CPU fallback).
func (l *loadFlags) load(e env, warn func(string)) (*llama.Model, error) {
	pl, err := l.place(e, warn)
	if err != nil {
		return nil, err
	}
	return l.loadPlaced(e, pl)
}

// placement is where a model will run, decided before it loads.
type placement struct {
	gpuLayers int
	device    llama.Device
}

// place initialises the backends and decides the device (see
// gpuPlacement), so that a command can name it before loading.
func (l *loadFlags) place(e env, warn func(string)) (placement, error) {
	if l.mainGPU < 0 {
		return placement{}, usageError{fmt.Sprintf("--main-gpu %d: want a GPU index ≥ 0", l.mainGPU)}
	}
	if err := l.initBackends(e, warn); err != nil {
		return placement{}, err
	}
	layers, err := l.gpuPlacement(warn)
	if err != nil {
		return placement{}, err
	}
	dev, err := llama.PlacementDevice(llama.ModelParams{GPULayers: layers, MainGPU: l.mainGPU})
	if err != nil {
		return placement{}, err
	}
	return placement{gpuLayers: layers, device: dev}, nil
}

// loadPlaced loads the model (generating the demo model first when no
// --model is given) as pl says.
func (l *loadFlags) loadPlaced(e env, pl placement) (*llama.Model, error) {
	path, err := ensureModel(l.model, l.cacheDir, e)
	if err != nil {
		return nil, err
	}
	bar := newProgressBar(e.stderr, "loading model", e.stderrTTY)
	return llama.Load(path, llama.ModelParams{
		GPULayers: pl.gpuLayers,
		MainGPU:   l.mainGPU,
		Progress: func(f float32) bool {
			bar.Set(float64(f))
			return true
		},
	})
}

// newContext creates a context for seqs sequences sharing --ctx-size
// tokens (capped at the model's training context, and a multiple of
// seqs so every slot gets the same share); batch 0 takes the default.
func (l *loadFlags) newContext(m *llama.Model, seqs, batch int) (*llama.Context, error) {
	size := min(l.ctxSize, m.Metadata().ContextTrain) / seqs * seqs
	if l.poll < 0 || l.poll > 100 {
		return nil, usageError{fmt.Sprintf("--poll %d: want 0-100", l.poll)}
	}
	poll := l.poll
	if poll == 0 {
		poll = -1 // ContextParams: negative is no spinning, 0 the default
	}
	tk, err := llama.ParseCacheType(l.cacheTypeK)
	if err != nil {
		return nil, usageError{fmt.Sprintf("--cache-type-k: %v", err)}
	}
	tv, err := llama.ParseCacheType(l.cacheTypeV)
	if err != nil {
		return nil, usageError{fmt.Sprintf("--cache-type-v: %v", err)}
	}
	return llama.NewContext(m, llama.ContextParams{Size: size, BatchSize: batch, MaxSeqs: seqs, Threads: l.threads,
		NoThreadpool: !l.threadpool, Poll: poll, CacheTypeK: tk, CacheTypeV: tv})
}

func runGenerate(ctx context.Context, args []string, e env) error {
	fs := newFlagSet("generate", "Generates text from a prompt, offline, streaming it to stdout.", e.stderr)
	var lf loadFlags
	lf.register(fs)
	prompt := fs.String("prompt", "", "prompt text (required)")
	maxTokens := fs.Int("max-tokens", 128, "most tokens to generate")
	temp := fs.Float64("temperature", 0.8, "sampling temperature (0: greedy)")
	topK := fs.Int("top-k", 40, "top-k sampling (0: off)")
	topP := fs.Float64("top-p", 0.95, "nucleus sampling (1: off)")
	minP := fs.Float64("min-p", 0.05, "min-p sampling (0: off)")
	repeat := fs.Float64("repeat-penalty", 1.0, "repetition penalty (1: off)")
	seed := fs.Uint("seed", 0, "sampling seed (0: random)")
	if err := parseNoArgs(fs, args, e.getenv); err != nil {
		return err
	}
	if *prompt == "" {
		return usageError{"generate: --prompt is required"}
	}
	if *maxTokens <= 0 {
		return usageError{"generate: --max-tokens must be positive"}
	}
	if *temp < 0 || *topP < 0 || *topP > 1 || *minP < 0 || *minP > 1 || *topK < 0 {
		return usageError{"generate: --temperature must be ≥ 0, --top-p and --min-p in [0,1], --top-k ≥ 0"}
	}
	s := uint32(*seed)
	if s == 0 {
		s = uint32(time.Now().UnixNano())
	}

	m, err := lf.load(e, stderrWarn(e))
	if err != nil {
		return err
	}
	defer m.Close()
	fmt.Fprintf(e.stderr, "[device %s]\n", deviceLabel(m.Device()))
	c, err := lf.newContext(m, 1, 0)
	if err != nil {
		return err
	}
	defer c.Close()

	res, err := engine.RunOffline(ctx, c, *prompt, engine.OfflineOptions{
		MaxTokens: *maxTokens,
		Sampler: llama.SamplerParams{
			Temperature: float32(*temp), TopK: *topK, TopP: float32(*topP), MinP: float32(*minP),
			RepeatPenalty: float32(*repeat), Seed: s,
		},
	}, func(text string) error {
		_, err := fmt.Fprint(e.stdout, text)
		return err
	})
	fmt.Fprintln(e.stdout)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "[%d prompt tokens in %v, %d tokens in %v (%.1f tok/s), finish: %s]\n",
		res.PromptTokens, res.Prefill.Round(time.Millisecond), res.CompletionTokens, res.Decode.Round(time.Millisecond),
		float64(res.CompletionTokens)/res.Decode.Seconds(), res.Finish)
	return nil
}
