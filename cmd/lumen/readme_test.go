package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/lumenllm/lumen/internal/synth"
)

// repoRoot is the checkout this test file lives in.
func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// readmeCommands returns the shell commands of the README's "## Serve"
// section that talk to a running server (curl, grpcurl, lumen client).
func readmeCommands(t *testing.T, root string) []string {
	t.Helper()
	var cmds []string
	for _, l := range readmeShell(t, root) {
		if l.section != "Serve" {
			continue
		}
		for _, prefix := range []string{"curl ", "grpcurl ", "bin/lumen client "} {
			if strings.HasPrefix(l.cmd, prefix) {
				cmds = append(cmds, l.cmd)
			}
		}
	}
	return cmds
}

// The README's curl, grpcurl and lumen client examples work as written
// against a served model (only the ports differ: the test's are ephemeral).
func TestReadmeExamples(t *testing.T) {
	root, err := filepath.Abs(repoRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	lumen := filepath.Join(root, "bin", "lumen")
	tools := filepath.Join(root, "bin", "tools")
	for _, p := range []string{lumen, filepath.Join(tools, "grpcurl")} {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s missing (make test builds it): %v", p, err)
		}
	}
	cmds := readmeCommands(t, root)
	if len(cmds) < 4 {
		t.Fatalf("found %d example commands in the README, want at least 4: %q", len(cmds), cmds)
	}
	// A context big enough for the structured-output examples' tool
	// prompts in the tiny model's byte-sized tokens.
	// --embeddings: the embeddings example says the server runs with it.
	// FIM tokens: the fill-in-the-middle example needs them.
	cfg, err := synth.Preset("tiny")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Context, cfg.FIM = structuredCtx, true
	model := filepath.Join(t.TempDir(), "tiny-fim.gguf")
	if err := synth.WriteFile(model, cfg, nil); err != nil {
		t.Fatal(err)
	}
	httpAddr, grpcAddr := startServe(t, "--model", model, "--ctx-size", fmt.Sprint(structuredCtx), "--embeddings")
	for _, cmd := range cmds {
		t.Run(strings.Fields(cmd)[0], func(t *testing.T) {
			cmd = strings.NewReplacer("127.0.0.1:8080", httpAddr, "127.0.0.1:9090", grpcAddr).Replace(cmd)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			c := exec.CommandContext(ctx, "bash", "-c", cmd)
			c.Dir = root
			c.Env = append(os.Environ(), "PATH="+tools+string(os.PathListSeparator)+os.Getenv("PATH"))
			out, err := c.CombinedOutput()
			if err != nil {
				t.Fatalf("%s: %v\n%s", cmd, err, out)
			}
			s := string(out)
			// An error body; a Responses object's "error": null is not one.
			if strings.TrimSpace(s) == "" || strings.Contains(s, `"error":{`) {
				t.Errorf("%s: unexpected output:\n%s", cmd, s)
			}
			if strings.Contains(cmd, `"stream":true`) && !strings.Contains(s, "data: [DONE]") {
				t.Errorf("%s: SSE stream did not end with [DONE]:\n%s", cmd, s)
			}
		})
	}
}
