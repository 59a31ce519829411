// Command lumen is the Lumen LLM inference server and its tools.
//
// Flags are read here only; every flag is also read from a LUMEN_*
// environment variable (--max-tokens from LUMEN_MAX_TOKENS).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
)

const usage = `lumen — LLM inference with built-in tracing

usage:
  lumen generate --prompt TEXT [--model PATH] [--max-tokens N] [--temperature T] [--top-p P] [--seed S]
  lumen model synth --out PATH [--preset NAME] [--layers N --embd N --heads N --kv-heads N --ff N --ctx N --vocab N --type f32|f16|q8_0]
  lumen model info PATH
  lumen devices [--backend-dir DIR]      (devices a model can run on; GPUs come from backends such as make cuda's)
  lumen serve [--model PATH] [--http-addr 127.0.0.1:8080] [--grpc-addr 127.0.0.1:9090] [--parallel N] [--max-queue N]
              [--api-key KEY] [--otlp-endpoint HOST:PORT] [--sampling-config FILE]
  lumen client generate|tokenize|models [--addr 127.0.0.1:9090] ...
  lumen bench engine [--model PATH | --preset NAME] [--threads N] [--sequences 1,4,8,16]
  lumen bench serve [--protocol grpc|http|openai] [--addr ADDR] [--peer URL] [--concurrency N | --rate R] [--requests N]
  lumen bench tracing [--preset NAME] [--otlp-endpoint HOST:PORT] [--rounds N]
  lumen trace analyze (--file PATH | --jaeger URL (--trace-id ID | --service NAME [--since 1h]))
              [--prices FILE] [--json] [--html FILE]

Run 'lumen COMMAND -h' for a command's flags.
`

// version is set at build time (-ldflags "-X main.version=...").
var version = "dev"

// env is what a command sees of the process: arguments are passed
// separately, everything else comes through here so tests can run
// commands in-process.
type env struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	stderrTTY      bool
	// exeDir is the lumen binary's directory, whose lib/ holds loadable
	// backends by default; empty in tests.
	exeDir string
	// ggmlSource names the ggml sources compiled in (see ggmlSource).
	ggmlSource string
	// self is how the user ran this binary (argv[0], "bin/lumen" under
	// make run), for the commands serve suggests; empty in tests.
	self string
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	e := env{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv, stderrTTY: isTerminal(os.Stderr), ggmlSource: ggmlSource(), self: os.Args[0]}
	if exe, err := os.Executable(); err == nil {
		e.exeDir = filepath.Dir(exe)
	}
	err := run(ctx, os.Args[1:], e)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "lumen:", err)
		}
		os.Exit(exitCode(err))
	}
}

// usageError marks errors in how the command was invoked (exit code 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func exitCode(err error) int {
	var ue usageError
	if errors.Is(err, flag.ErrHelp) {
		return 0 // asked for help, and got it
	}
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

func run(ctx context.Context, args []string, e env) error {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, usage)
		return usageError{"no command given"}
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return runServe(ctx, rest, e)
	case "client":
		return runClient(ctx, rest, e)
	case "generate":
		return runGenerate(ctx, rest, e)
	case "model":
		return runModel(ctx, rest, e)
	case "devices":
		return runDevices(ctx, rest, e)
	case "bench":
		return runBench(ctx, rest, e)
	case "trace":
		return runTrace(ctx, rest, e)
	case renderWorkerCommand:
		return runRenderWorker()
	case "help", "-h", "--help", "-help":
		fmt.Fprint(e.stdout, usage)
		return nil
	default:
		fmt.Fprint(e.stderr, usage)
		return usageError{fmt.Sprintf("unknown command %q", cmd)}
	}
}
