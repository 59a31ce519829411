package cudacheck

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// parse reads docker/Dockerfile.cuda with BuildKit's parser and its
// non-experimental lint rules, failing the test on any finding.
func parse(t *testing.T) ([]instructions.Stage, []instructions.ArgCommand) {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "Dockerfile.cuda"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := parser.Parse(f)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	for _, w := range res.Warnings {
		t.Errorf("parser warning: %s", w.Short)
	}
	lint := linter.New(&linter.Config{Warn: func(rule, _, _, msg string, loc []parser.Range) {
		t.Errorf("lint %s: %s at %v", rule, msg, loc)
	}})
	stages, args, err := instructions.Parse(res.AST, lint)
	if err != nil {
		t.Fatalf("instructions: %v", err)
	}
	return stages, args
}

func stage(t *testing.T, stages []instructions.Stage, name string) instructions.Stage {
	t.Helper()
	for _, s := range stages {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no stage %q", name)
	return instructions.Stage{}
}

// runs is the text of a stage's RUN commands, one per element.
func runs(s instructions.Stage) []string {
	var out []string
	for _, c := range s.Commands {
		if r, ok := c.(*instructions.RunCommand); ok {
			out = append(out, strings.Join(r.CmdLine, " "))
		}
	}
	return out
}

func TestParsesWithoutFindings(t *testing.T) {
	stages, args := parse(t)
	var names []string
	for _, a := range args {
		for _, kv := range a.Args {
			names = append(names, kv.Key)
		}
	}
	for _, want := range []string{"GO_VERSION", "CUDA_VERSION", "UBUNTU_RELEASE"} {
		if !slices.Contains(names, want) {
			t.Errorf("global ARG %s missing (have %v)", want, names)
		}
	}
	if len(stages) != 3 {
		t.Errorf("%d stages, want go, build and the runtime image", len(stages))
	}
}

// The backend must come from the same CUDA release as the runtime image
// (it links that release's cudart and cuBLAS), built by make from the
// same checkout as the binary.
func TestBuildsBinaryAndBackendTogether(t *testing.T) {
	stages, _ := parse(t)
	build := stage(t, stages, "build")
	runtime := stages[len(stages)-1]
	const devel, rt = "nvidia/cuda:${CUDA_VERSION}-devel-${UBUNTU_RELEASE}", "nvidia/cuda:${CUDA_VERSION}-runtime-${UBUNTU_RELEASE}"
	if build.BaseName != devel || runtime.BaseName != rt {
		t.Errorf("stages from %q and %q, want %q and %q", build.BaseName, runtime.BaseName, devel, rt)
	}
	var makeRun string
	for _, r := range runs(build) {
		if strings.Contains(r, "make build") {
			makeRun = r
		}
	}
	for _, want := range []string{"make build", "make cuda", `CUDA_ARCHS="${CUDA_ARCHS}"`, `CPU_FLAGS="${CPU_FLAGS}"`} {
		if !strings.Contains(makeRun, want) {
			t.Errorf("build stage RUN %q lacks %q", makeRun, want)
		}
	}
}

// lumen loads backends from lib/ beside its binary: the image must put
// them there, and name the binary on PATH as the entry point.
func TestShipsBackendBesideBinary(t *testing.T) {
	stages, _ := parse(t)
	runtime := stages[len(stages)-1]
	copies := map[string]string{} // source -> destination
	var env []string
	var entry []string
	for _, c := range runtime.Commands {
		switch c := c.(type) {
		case *instructions.CopyCommand:
			if c.From == "build" {
				for _, src := range c.SourcePaths {
					copies[src] = c.DestPath
				}
			}
		case *instructions.EnvCommand:
			for _, kv := range c.Env {
				env = append(env, kv.Key+"="+kv.Value)
			}
		case *instructions.EntrypointCommand:
			entry = c.CmdLine
		}
	}
	bin, lib := copies["/src/bin/lumen"], copies["/src/bin/lib/"]
	if bin == "" || lib == "" {
		t.Fatalf("runtime stage copies %v, want /src/bin/lumen and /src/bin/lib/ from the build stage", copies)
	}
	if want := filepath.Join(filepath.Dir(bin), "lib") + "/"; lib != want {
		t.Errorf("backend copied to %s, binary to %s: lumen looks in %s", lib, bin, want)
	}
	if !slices.Contains(env, fmt.Sprintf("PATH=%s:${PATH}", filepath.Dir(bin))) {
		t.Errorf("PATH does not lead to %s: env %v", bin, env)
	}
	if !slices.Contains(env, "LUMEN_GPU_LAYERS=all") {
		t.Errorf("the CUDA image should offload every layer by default: env %v", env)
	}
	if !slices.Equal(entry, []string{"lumen"}) {
		t.Errorf("ENTRYPOINT %v, want [lumen]", entry)
	}
}
