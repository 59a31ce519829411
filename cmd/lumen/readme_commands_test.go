package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lumenllm/lumen/internal/synth"
)

// readmeLine is one command of a README shell code block.
type readmeLine struct {
	section string // the ## heading it is under
	cmd     string // continuations joined, trailing comment dropped
	comment string
}

// readmeShell returns every command of the README's sh code blocks.
func readmeShell(t *testing.T, root string) []readmeLine {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var out []readmeLine
	section, inBlock, shell := "", false, false
	var block []string
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "```") {
			if inBlock && shell {
				for _, cmd := range joinContinued(block) {
					l := readmeLine{section: section, cmd: cmd}
					if i := strings.Index(cmd, "  #"); i >= 0 {
						l.cmd, l.comment = strings.TrimSpace(cmd[:i]), strings.TrimSpace(cmd[i+3:])
					}
					out = append(out, l)
				}
			}
			inBlock, shell, block = !inBlock, line == "```sh", nil
			continue
		}
		if inBlock {
			block = append(block, line)
		} else if strings.HasPrefix(line, "## ") {
			section = strings.TrimPrefix(line, "## ")
		}
	}
	return out
}

// joinContinued turns shell lines into commands: a line ending in a
// backslash continues on the next; lines are trimmed, and blank and
// comment lines dropped.
func joinContinued(lines []string) []string {
	var cmds []string
	var cur strings.Builder
	for _, line := range lines {
		line = strings.TrimSpace(line)
		if cur.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if cur.Len() > 0 {
			cur.WriteString(" ")
		}
		cur.WriteString(strings.TrimSpace(strings.TrimSuffix(line, "\\")))
		if !strings.HasSuffix(line, "\\") {
			cmds = append(cmds, cur.String())
			cur.Reset()
		}
	}
	return cmds
}

// readmeWorkdir is a directory laid out as the README assumes: bin/ (the
// built lumen and tools), ./model.gguf, traces.json, and the repository's
// configs and recorded traces.
func readmeWorkdir(t *testing.T, root string) string {
	t.Helper()
	dir := t.TempDir()
	for _, p := range []string{"bin", "configs", "cmd"} {
		if err := os.Symlink(filepath.Join(root, p), filepath.Join(dir, p)); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := synth.Preset("tiny")
	if err != nil {
		t.Fatal(err)
	}
	if err := synth.WriteFile(filepath.Join(dir, "model.gguf"), cfg, nil); err != nil {
		t.Fatal(err)
	}
	traces, err := os.ReadFile(filepath.Join(root, "cmd", "lumen", otlpFixture))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "traces.json"), traces, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// runShell runs a command line with bash in dir.
func runShell(t *testing.T, dir, cmd string, timeout time.Duration) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c := exec.CommandContext(ctx, "bash", "-c", cmd)
	c.Dir = dir
	out, err := c.CombinedOutput()
	return string(out), err
}

// Every bin/lumen command of the README runs as written, from a directory
// laid out as it assumes. The rewrites are the test's own and few: the
// documented ports become the test servers', Jaeger's address a fake
// Jaeger serving a recorded trace, the 250m preset the tiny one with the
// 250m's context (same code, seconds instead of minutes) and /tmp/m.gguf a temporary file.
// Commands that need a GPU (the CUDA section) run in the device check;
// client lines run in TestReadmeExamples.
func TestReadmeEveryLumenCommand(t *testing.T) {
	root, err := filepath.Abs(repoRoot(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "bin", "lumen")); err != nil {
		t.Fatalf("bin/lumen missing (make test builds it): %v", err)
	}
	dir := readmeWorkdir(t, root)
	jaegerDoc, err := os.ReadFile(filepath.Join(root, "cmd", "lumen", jaegerFixture))
	if err != nil {
		t.Fatal(err)
	}
	jaeger := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(jaegerDoc)
	}))
	defer jaeger.Close()
	httpA, grpcA := startServe(t)
	httpB, _ := startServe(t)
	rewrite := strings.NewReplacer(
		"127.0.0.1:8080", httpA, "127.0.0.1:9090", grpcA, "127.0.0.1:8081", httpB,
		"http://localhost:16686", jaeger.URL,
		"--preset 250m", "--preset tiny --ctx 2048",
		"/tmp/m.gguf", filepath.Join(dir, "m.gguf"))

	seen := map[string]bool{}
	for _, l := range readmeShell(t, root) {
		if !strings.HasPrefix(l.cmd, "bin/lumen ") {
			continue
		}
		f := strings.Fields(l.cmd)
		kind := f[1]
		if len(f) > 2 && !strings.HasPrefix(f[2], "-") {
			kind += " " + f[2]
		}
		switch {
		case kind == "client generate" || l.section == "CUDA":
			continue
		case kind == "serve":
			seen[kind] = true
			t.Run(l.cmd, func(t *testing.T) {
				stderr := startReadmeServe(t, dir, l.cmd)
				if l.section == "Serve" {
					runTryLines(t, dir, stderr)
				}
			})
			continue
		}
		seen[kind] = true
		cmds := []string{rewrite.Replace(l.cmd)}
		if l.comment == "or --json" {
			cmds = append(cmds, cmds[0]+" --json")
		}
		for _, cmd := range cmds {
			t.Run(l.cmd, func(t *testing.T) {
				out, err := runShell(t, dir, cmd, 5*time.Minute)
				if err != nil {
					t.Fatalf("%s: %v\n%s", cmd, err, out)
				}
				if strings.TrimSpace(out) == "" {
					t.Errorf("%s printed nothing", cmd)
				}
			})
		}
	}
	for _, kind := range []string{"serve", "generate", "model info", "model synth", "bench engine", "bench serve", "trace analyze"} {
		if !seen[kind] {
			t.Errorf("the README has no bin/lumen %s line any more: %v", kind, seen)
		}
	}
}

// startReadmeServe runs a README serve line on ephemeral ports (and the
// generated ./model.gguf when it names no model), waits until it serves,
// and stops it with SIGTERM at the end of the test, which must exit 0. It
// returns what the server printed up to then.
func startReadmeServe(t *testing.T, dir, line string) string {
	t.Helper()
	args := strings.Fields(line)[1:]
	if !strings.Contains(line, "--model") {
		args = append(args, "--model", "./model.gguf")
	}
	args = append(args, "--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0", "--threads", "1", "--ctx-size", "2048")
	c := exec.Command("bin/lumen", args...)
	c.Dir = dir
	c.Env = append(os.Environ(), "LUMEN_API_KEY=")
	pipe, err := c.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1)
	var printed strings.Builder
	go func() {
		sc := bufio.NewScanner(pipe)
		served := false
		for sc.Scan() {
			if !served {
				printed.WriteString(sc.Text() + "\n")
			}
			if strings.HasPrefix(sc.Text(), "Open http://") && !served {
				served = true
				lines <- printed.String()
			}
		}
		io.Copy(io.Discard, pipe)
		if !served {
			lines <- printed.String()
		}
	}()
	var out string
	select {
	case out = <-lines:
	case <-time.After(2 * time.Minute):
		c.Process.Kill()
		t.Fatalf("%s did not start serving", line)
	}
	if !strings.Contains(out, "Lumen is serving") {
		c.Wait()
		t.Fatalf("%s exited before serving:\n%s", line, out)
	}
	t.Cleanup(func() {
		c.Process.Signal(syscall.SIGTERM)
		if err := c.Wait(); err != nil {
			t.Errorf("%s after SIGTERM: %v", line, err)
		}
	})
	return out
}

var tryAddr = regexp.MustCompile(`127\.0\.0\.1:\d+`)

// runTryLines runs the commands serve printed under "Try:", as printed,
// from where it was started.
func runTryLines(t *testing.T, dir, printed string) {
	t.Helper()
	_, block, ok := strings.Cut(printed, "Lumen is serving. Try:\n")
	if !ok {
		t.Fatalf("no Try: block in\n%s", printed)
	}
	block, _, _ = strings.Cut(block, "\n\n")
	cmds := joinContinued(strings.Split(block, "\n"))
	if len(cmds) != 4 {
		t.Fatalf("want 4 suggested commands (chat, generate, grpcurl, client), got %d: %q", len(cmds), cmds)
	}
	for _, cmd := range cmds {
		if !tryAddr.MatchString(cmd) {
			t.Errorf("%q names no bound address", cmd)
		}
		out, err := runShell(t, dir, cmd, time.Minute)
		if err != nil || strings.TrimSpace(out) == "" || strings.Contains(out, `"error"`) {
			t.Errorf("suggested %s: %v\n%s", cmd, err, out)
		}
	}
}
