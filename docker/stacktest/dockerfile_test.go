package stacktest

import (
	"bufio"
	"debug/elf"
	"encoding/json"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	"golang.org/x/mod/modfile"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd  string // keyword, upper case
	args string
	line int
}

// dockerfile is docker/Dockerfile split into the instructions before the
// first FROM (global ARGs) and its build stages, each starting at a FROM.
type dockerfile struct {
	meta   []instruction
	stages [][]instruction
}

// parseDockerfile reads docker/Dockerfile as the Dockerfile frontend
// does for what these tests need: comments and blank lines dropped
// (inside continuations too), lines ending in a backslash joined.
func parseDockerfile(t testing.TB) *dockerfile {
	t.Helper()
	f, err := os.Open(dockerPath(t, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d := &dockerfile{}
	var cur []string
	start := 0
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if len(cur) == 0 {
			start = n
		}
		body, more := strings.CutSuffix(line, `\`)
		cur = append(cur, strings.TrimSpace(body))
		if more {
			continue
		}
		full := strings.Join(cur, " ")
		cur = nil
		kw, args, _ := strings.Cut(full, " ")
		in := instruction{cmd: strings.ToUpper(kw), args: strings.TrimSpace(args), line: start}
		switch {
		case in.cmd == "FROM":
			d.stages = append(d.stages, []instruction{in})
		case len(d.stages) == 0:
			d.meta = append(d.meta, in)
		default:
			d.stages[len(d.stages)-1] = append(d.stages[len(d.stages)-1], in)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(cur) != 0 {
		t.Fatal("Dockerfile ends inside a continuation line")
	}
	if len(d.stages) < 2 {
		t.Fatalf("Dockerfile has %d stages, want a builder and a runtime stage", len(d.stages))
	}
	return d
}

// final is the runtime stage, the image that is run.
func (d *dockerfile) final() []instruction { return d.stages[len(d.stages)-1] }

func all(stage []instruction, cmd string) []instruction {
	var out []instruction
	for _, in := range stage {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

// argDefault is the default of ARG name, global or in any stage.
func (d *dockerfile) argDefault(t testing.TB, name string) string {
	t.Helper()
	for _, stage := range append([][]instruction{d.meta}, d.stages...) {
		for _, in := range all(stage, "ARG") {
			k, v, ok := strings.Cut(in.args, "=")
			if k != name {
				continue
			}
			if !ok {
				t.Fatalf("Dockerfile:%d: ARG %s has no default", in.line, name)
			}
			if strings.HasPrefix(v, `"`) {
				u, err := strconv.Unquote(v)
				if err != nil {
					t.Fatalf("Dockerfile:%d: ARG %s: %v", in.line, name, err)
				}
				v = u
			}
			return v
		}
	}
	t.Fatalf("Dockerfile: no ARG %s", name)
	return ""
}

// env is the final stage's ENV settings (KEY=VALUE form, unquoted).
func (d *dockerfile) env(t testing.TB) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, in := range all(d.final(), "ENV") {
		for _, kv := range strings.Fields(in.args) {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || strings.ContainsAny(v, `"'`) {
				t.Fatalf("Dockerfile:%d: ENV %q: want unquoted KEY=VALUE pairs", in.line, kv)
			}
			out[k] = v
		}
	}
	return out
}

// exec is an exec-form (JSON array) instruction of the final stage.
func (d *dockerfile) exec(t testing.TB, cmd string) []string {
	t.Helper()
	ins := all(d.final(), cmd)
	if len(ins) != 1 {
		t.Fatalf("runtime stage has %d %s instructions, want 1", len(ins), cmd)
	}
	var argv []string
	if err := json.Unmarshal([]byte(ins[0].args), &argv); err != nil {
		t.Fatalf("Dockerfile:%d: %s is not in exec (JSON) form: %v", ins[0].line, cmd, err)
	}
	return argv
}

// aptPackages are the packages `apt-get install` adds in the final stage.
func (d *dockerfile) aptPackages() map[string]bool {
	pkgs := map[string]bool{}
	for _, in := range all(d.final(), "RUN") {
		_, rest, ok := strings.Cut(in.args, "apt-get install")
		if !ok {
			continue
		}
		for _, w := range strings.Fields(rest) {
			if w == "&&" || w == ";" || w == "|" {
				break
			}
			if !strings.HasPrefix(w, "-") {
				pkgs[w] = true
			}
		}
	}
	return pkgs
}

func TestDockerfileBuilderMatchesGoDirective(t *testing.T) {
	d := parseDockerfile(t)
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	mf, err := modfile.ParseLax("go.mod", data, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := d.argDefault(t, "GO_VERSION"); mf.Go == nil || got != mf.Go.Version {
		t.Errorf("ARG GO_VERSION=%s, go.mod says go %v", got, mf.Go)
	}
	release := d.argDefault(t, "DEBIAN_RELEASE")
	if release != "bookworm" && release != "trixie" {
		t.Errorf("DEBIAN_RELEASE=%s, want bookworm or trixie", release)
	}
	// The runtime uses the builder's Debian release, so the libstdc++
	// the binary was linked against is the one it runs with.
	if got := d.stages[0][0].args; got != "golang:${GO_VERSION}-${DEBIAN_RELEASE} AS build" {
		t.Errorf("builder is FROM %s", got)
	}
	if got := d.final()[0].args; got != "debian:${DEBIAN_RELEASE}-slim" {
		t.Errorf("runtime is FROM %s", got)
	}
}

func TestDockerfileBuildsPortably(t *testing.T) {
	d := parseDockerfile(t)
	flags := d.argDefault(t, "CPU_FLAGS")
	if strings.Contains(flags, "native") || !strings.Contains(flags, "-march=x86-64") {
		t.Errorf("CPU_FLAGS default %q: want a portable -march=x86-64[-vN], never native", flags)
	}
	var builds []instruction
	for _, in := range all(d.stages[0], "RUN") {
		if strings.Contains(in.args, "make build") {
			builds = append(builds, in)
		}
	}
	if len(builds) != 1 || !strings.Contains(builds[0].args, `make build CPU_FLAGS="${CPU_FLAGS}"`) {
		t.Errorf("builder must run `make build CPU_FLAGS=\"${CPU_FLAGS}\"`, has %v", builds)
	}
	// The Makefile must take CPU_FLAGS for it to mean anything.
	mk, err := os.ReadFile(filepath.Join(repoRoot(t), "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(mk), "CPU_FLAGS ?=") || !strings.Contains(string(mk), "$(CPU_FLAGS)") {
		t.Error("Makefile no longer takes CPU_FLAGS")
	}
}

// Every shared library bin/lumen needs is in the runtime image: from
// libc6 (in every Debian image) or from a package the stage installs.
func TestDockerfileRuntimeHasTheLibrariesLumenLinks(t *testing.T) {
	f, err := elf.Open(lumenBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	libs, err := f.ImportedLibraries()
	if err != nil {
		t.Fatal(err)
	}
	if len(libs) == 0 {
		t.Fatal("bin/lumen links no shared libraries; expected libstdc++ at least")
	}
	inBase := map[string]bool{"libc.so.6": true, "libm.so.6": true, "libpthread.so.0": true,
		"libdl.so.2": true, "librt.so.1": true, "ld-linux-x86-64.so.2": true}
	debianPackage := map[string]string{
		"libstdc++.so.6": "libstdc++6",
		"libgcc_s.so.1":  "libgcc-s1",
		"libgomp.so.1":   "libgomp1",
	}
	installed := parseDockerfile(t).aptPackages()
	for _, lib := range libs {
		if inBase[lib] {
			continue
		}
		pkg, ok := debianPackage[lib]
		if !ok {
			t.Errorf("bin/lumen needs %s: install its Debian package in the runtime stage and name it here", lib)
			continue
		}
		if !installed[pkg] {
			t.Errorf("bin/lumen needs %s, but the runtime stage does not install %s", lib, pkg)
		}
	}
}

func TestDockerfileServesOnAllInterfacesAsNonRoot(t *testing.T) {
	d := parseDockerfile(t)
	users := all(d.final(), "USER")
	if len(users) == 0 {
		t.Fatal("runtime stage has no USER: it would run as root")
	}
	if u := users[len(users)-1].args; u == "root" || u == "0" || strings.HasPrefix(u, "0:") {
		t.Errorf("runtime runs as %q", u)
	}
	if got := d.exec(t, "ENTRYPOINT"); !slices.Equal(got, []string{"lumen"}) {
		t.Errorf("ENTRYPOINT %q, want [lumen]", got)
	}
	if got := d.exec(t, "CMD"); !slices.Equal(got, []string{"serve"}) {
		t.Errorf("CMD %q, want [serve]", got)
	}

	imageEnv := d.env(t)
	compose := service(t, loadCompose(t, nil), "lumen")
	var exposed []string
	for _, in := range all(d.final(), "EXPOSE") {
		exposed = append(exposed, strings.Fields(in.args)...)
	}
	for _, v := range []string{"LUMEN_HTTP_ADDR", "LUMEN_GRPC_ADDR"} {
		host, port := hostPort(t, imageEnv[v])
		if host != "0.0.0.0" {
			t.Errorf("%s=%s: want 0.0.0.0, reachable from outside the container", v, imageEnv[v])
		}
		if !slices.Contains(exposed, strconv.Itoa(port)) {
			t.Errorf("%s port %d is not EXPOSEd (%v)", v, port, exposed)
		}
		published := false
		for _, p := range compose.Ports {
			published = published || int(p.Target) == port
		}
		if !published {
			t.Errorf("%s port %d is not published by the compose lumen service", v, port)
		}
	}

	// Generated models go to a volume, so they survive the container.
	cache := imageEnv["LUMEN_CACHE_DIR"]
	var volumes []string
	for _, in := range all(d.final(), "VOLUME") {
		volumes = append(volumes, strings.Fields(in.args)...)
	}
	inVolume := false
	for _, v := range volumes {
		inVolume = inVolume || cache == v || strings.HasPrefix(cache, strings.TrimSuffix(v, "/")+"/")
	}
	if cache == "" || !inVolume {
		t.Errorf("LUMEN_CACHE_DIR=%q is not inside a VOLUME (%v)", cache, volumes)
	}
	namedVolume := false
	for _, v := range compose.Volumes {
		namedVolume = namedVolume || v.Type == "volume" && (cache == v.Target || strings.HasPrefix(cache, v.Target+"/"))
	}
	if !namedVolume {
		t.Errorf("compose mounts no named volume over LUMEN_CACHE_DIR=%s", cache)
	}
	// The compose file's sampling path lives where the image keeps configs/.
	if wd := all(d.final(), "WORKDIR"); len(wd) == 0 || !strings.HasPrefix(env(t, compose, "LUMEN_SAMPLING_CONFIG"), wd[len(wd)-1].args+"/configs/") {
		t.Errorf("LUMEN_SAMPLING_CONFIG is not under the image's WORKDIR/configs (%v)", wd)
	}
}

// The build context (the checkout, filtered by .dockerignore) holds what
// the Dockerfile copies and leaves out binaries, VCS data and models.
func TestDockerignoreKeepsSourcesDropsArtifacts(t *testing.T) {
	root := repoRoot(t)
	f, err := os.Open(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		t.Fatal(err)
	}
	excluded := func(p string) bool {
		ex, err := pm.MatchesOrParentMatches(p)
		if err != nil {
			t.Fatal(err)
		}
		return ex
	}
	for _, p := range []string{"bin/lumen", ".git/HEAD", "docker/models/llama.gguf", "model.gguf", "cmd/lumen/lumen.test"} {
		if !excluded(p) {
			t.Errorf(".dockerignore lets %s into the build context", p)
		}
	}
	// The builder needs the Makefile and the Go sources; copies need
	// their sources (the last word of a COPY is its destination).
	needed := []string{"Makefile", "go.mod", "go.sum", "cmd/lumen/main.go", "internal", "configs/sampling-strategies.json"}
	d := parseDockerfile(t)
	for _, in := range append(all(d.stages[0], "COPY"), all(d.final(), "COPY")...) {
		words := strings.Fields(in.args)
		if strings.HasPrefix(words[0], "--from=") {
			continue
		}
		for _, src := range words[:len(words)-1] {
			if strings.HasPrefix(src, "--") {
				continue
			}
			if src != "." {
				needed = append(needed, path.Clean(src))
			}
			if _, err := os.Stat(filepath.Join(root, src)); err != nil {
				t.Errorf("Dockerfile:%d: COPY source: %v", in.line, err)
			}
		}
	}
	for _, p := range needed {
		if excluded(p) {
			t.Errorf(".dockerignore drops %s, which the build needs", p)
		}
	}
}
