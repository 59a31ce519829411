// Package arch holds tests of the shape the docs promise: which package
// may import which, and where cgo lives.
package arch

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

const mod = "github.com/lumenllm/lumen/"

type pkg struct {
	ImportPath string
	Imports    []string
	Deps       []string
	CgoFiles   []string
}

func packages(t *testing.T) map[string]pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", "../../...")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	pkgs := map[string]pkg{}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		pkgs[p.ImportPath] = p
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list found %d packages", len(pkgs))
	}
	return pkgs
}

// TestBoundaries: cgo only in the engine's llama package; transports
// reach no engine package and import no scheduler; the scheduler imports no engine; the offline
// analyzer and the name vocabulary reach no scheduler and no exporter.
func TestBoundaries(t *testing.T) {
	pkgs := packages(t)
	for path, p := range pkgs {
		if len(p.CgoFiles) > 0 && path != mod+"internal/engine/llama" {
			t.Errorf("%s has cgo files %v; only internal/engine/llama may", path, p.CgoFiles)
		}
	}
	forbid := func(from string, deps bool, banned ...string) {
		p, ok := pkgs[mod+from]
		if !ok {
			t.Errorf("package %s not found", from)
			return
		}
		list := p.Imports
		if deps {
			list = p.Deps
		}
		for _, d := range list {
			for _, b := range banned {
				if d == b || strings.HasPrefix(d, b+"/") {
					t.Errorf("%s reaches %s", from, d)
				}
			}
		}
	}
	engines := []string{mod + "internal/engine", mod + "internal/engine/llama"}
	for path := range pkgs {
		if rest, ok := strings.CutPrefix(path, mod+"internal/server/"); ok {
			forbid("internal/server/"+rest, true, engines...)
			// One door: transports reach the scheduler only through
			// inference, so they import it not at all.
			forbid("internal/server/"+rest, false, mod+"internal/scheduler")
		}
	}
	forbid("internal/scheduler", true, engines...)
	// SDK setup knows nothing of requests; recording them is recorder's.
	forbid("internal/telemetry", true, mod+"internal/scheduler")
	offline := []string{mod + "internal/scheduler", mod + "internal/engine", "go.opentelemetry.io/otel/exporters", "go.opentelemetry.io/otel/sdk", "google.golang.org/grpc"}
	forbid("internal/traceanalyze", true, offline...)
	forbid("internal/telemetry/semconv", true, append(offline, mod+"internal/telemetry")...)
	for _, leaf := range []string{"internal/reqerr", "internal/telemetry/semconv"} {
		for _, d := range pkgs[mod+leaf].Deps {
			if strings.HasPrefix(d, mod) {
				t.Errorf("%s imports %s: it must import nothing of Lumen's", leaf, d)
			}
		}
	}
}
