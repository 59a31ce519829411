package arch

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadmeLayout: the README's Layout section names only paths that
// exist, and every package directory directly under internal/ is in it.
func TestReadmeLayout(t *testing.T) {
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	start := strings.Index(text, "\n## Layout\n")
	if start < 0 {
		t.Fatal("README has no Layout section")
	}
	text = text[start:]
	open := strings.Index(text, "```\n")
	end := strings.Index(text[open+4:], "```")
	if open < 0 || end < 0 {
		t.Fatal("README Layout section has no code block")
	}
	listed := map[string]bool{}
	for line := range strings.SplitSeq(text[open+4:open+4+end], "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		// "proto/, gen/" and "internal/server/..." name directories.
		for p := range strings.SplitSeq(strings.TrimSuffix(f[0], ","), ",") {
			p = strings.TrimSuffix(strings.TrimSuffix(p, "..."), "/")
			listed[p] = true
			if _, err := os.Stat(filepath.Join("../..", p)); err != nil {
				t.Errorf("README Layout names %s, which does not exist", p)
			}
		}
		if len(f) > 1 && f[1] == "gen/" {
			listed["gen"] = true
		}
	}
	entries, err := os.ReadDir("../../internal")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		p := "internal/" + e.Name()
		if !listed[p] && !hasListedChild(listed, p) {
			t.Errorf("README Layout does not describe %s", p)
		}
	}
}

// hasListedChild: a package directory described by its sub-packages
// (internal/server by internal/server/...).
func hasListedChild(listed map[string]bool, dir string) bool {
	for p := range listed {
		if strings.HasPrefix(p, dir+"/") {
			return true
		}
	}
	return false
}
