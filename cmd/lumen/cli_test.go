package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestFlagsFromEnvironment(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    int
		wantErr bool
	}{
		{"default", nil, nil, 128, false},
		{"environment", nil, map[string]string{"LUMEN_MAX_TOKENS": "7"}, 7, false},
		{"flag beats environment", []string{"--max-tokens", "9"}, map[string]string{"LUMEN_MAX_TOKENS": "7"}, 9, false},
		{"bad environment value", nil, map[string]string{"LUMEN_MAX_TOKENS": "many"}, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := newFlagSet("x", "", io.Discard)
			n := fs.Int("max-tokens", 128, "")
			_, err := parseFlags(fs, tt.args, func(k string) string { return tt.env[k] })
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err == nil && *n != tt.want {
				t.Errorf("max-tokens = %d, want %d", *n, tt.want)
			}
			if err != nil && !strings.Contains(err.Error(), "LUMEN_MAX_TOKENS") {
				t.Errorf("error %q does not name the variable", err)
			}
		})
	}
}

func runCLI(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, env{stdout: &out, stderr: &errOut, getenv: func(string) string { return "" }})
	return out.String(), errOut.String(), err
}

// The offline path of a fresh clone: synthesize a model, inspect it,
// generate from it; and the default model generated into the cache.
func TestModelSynthInfoGenerate(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(dir, "m.gguf")
	if _, stderr, err := runCLI(t, "model", "synth", "--out", model, "--preset", "tiny", "--type", "q8_0", "--layers", "3"); err != nil {
		t.Fatalf("synth: %v\n%s", err, stderr)
	}
	out, _, err := runCLI(t, "model", "info", model)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"architecture       llama", "layers             3", "vocabulary         512"} {
		if !strings.Contains(out, want) {
			t.Errorf("model info lacks %q:\n%s", want, out)
		}
	}
	out, stderr, err := runCLI(t, "generate", "--model", model, "--prompt", "Hello", "--max-tokens", "10", "--temperature", "0", "--threads", "1")
	if err != nil || strings.TrimSpace(out) == "" || !strings.Contains(stderr, "10 tokens") {
		t.Errorf("generate: err %v\nstdout %q\nstderr %q", err, out, stderr)
	}
	out, stderr, err = runCLI(t, "generate", "--cache-dir", dir, "--prompt", "Hi", "--max-tokens", "4", "--threads", "1")
	if err != nil || strings.TrimSpace(out) == "" || !strings.Contains(stderr, "generating") {
		t.Errorf("default model: err %v\nstdout %q\nstderr %q", err, out, stderr)
	}
}

func TestUsageErrors(t *testing.T) {
	tests := [][]string{
		{},
		{"nope"},
		{"generate"},
		{"generate", "--prompt", "x", "--max-tokens", "0"},
		{"generate", "--prompt", "x", "--top-p", "2"},
		{"model", "synth"},
		{"model", "synth", "--out", "/tmp/x.gguf", "--preset", "huge"},
		{"model", "info"},
		{"bench", "engine", "--sequences", "1,x"},
	}
	for _, args := range tests {
		_, _, err := runCLI(t, args...)
		var ue usageError
		if !errors.As(err, &ue) && !errors.Is(err, flag.ErrHelp) {
			t.Errorf("lumen %q: err = %v, want a usage error", args, err)
		}
		if exitCode(err) != 2 {
			t.Errorf("lumen %q: exit code %d, want 2", args, exitCode(err))
		}
	}
}

func TestModelInfoRejectsMalformedFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bad.gguf")
	if _, _, err := runCLI(t, "model", "synth", "--out", p, "--preset", "tiny"); err != nil {
		t.Fatal(err)
	}
	if err := truncate(p, 100); err != nil {
		t.Fatal(err)
	}
	_, _, err := runCLI(t, "model", "info", p)
	if err == nil || !strings.Contains(err.Error(), "validate") {
		t.Errorf("truncated model: err = %v, want a validation error", err)
	}
}

func truncate(path string, size int64) error { return os.Truncate(path, size) }

// Every command and command group answers --help, -h and help with its
// usage and exit code 0; a command that takes no arguments refuses one;
// flags may follow a positional argument.
func TestHelpEverywhere(t *testing.T) {
	commands := [][]string{{}, {"serve"}, {"generate"}, {"model"}, {"model", "synth"}, {"model", "info"}, {"devices"},
		{"client"}, {"client", "generate"}, {"client", "tokenize"}, {"client", "models"},
		{"bench"}, {"bench", "engine"}, {"bench", "serve"}, {"bench", "tracing"}, {"trace"}, {"trace", "analyze"}}
	for _, cmd := range commands {
		for _, h := range []string{"--help", "-h", "help"} {
			args := append(slices.Clone(cmd), h)
			stdout, stderr, err := runCLI(t, args...)
			if code := exitCode(err); err != nil && code != 0 {
				t.Errorf("lumen %q: exit %d (%v)", args, code, err)
			}
			if !strings.Contains(stdout+stderr, "usage") {
				t.Errorf("lumen %q printed no usage:\n%s%s", args, stdout, stderr)
			}
		}
	}
	for _, args := range [][]string{{"serve", "extra"}, {"generate", "--prompt", "x", "extra"}, {"bench", "engine", "extra"}} {
		_, _, err := runCLI(t, args...)
		if exitCode(err) != 2 || !strings.Contains(fmt.Sprint(err), "unexpected argument") {
			t.Errorf("lumen %q: %v (exit %d), want a usage error naming the argument", args, err, exitCode(err))
		}
	}
	p := filepath.Join(t.TempDir(), "m.gguf")
	if _, _, err := runCLI(t, "model", "synth", "--out", p, "--preset", "tiny"); err != nil {
		t.Fatal(err)
	}
	stdout, _, err := runCLI(t, "model", "info", p, "--json")
	if err != nil || !strings.HasPrefix(strings.TrimSpace(stdout), "{") {
		t.Errorf("model info PATH --json: %v\n%s", err, stdout)
	}
}
