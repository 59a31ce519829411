package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The official openai npm SDK, installed by `make openai-sdk` into the
// folder LUMEN_TEST_OPENAI_SDK names, parses Lumen's structured output
// and tool calls, whole and streamed, and logprobs in both APIs' shapes
// (testdata/openai-sdk/check.cjs).
func TestOpenAISDK(t *testing.T) {
	dir := os.Getenv("LUMEN_TEST_OPENAI_SDK")
	if dir == "" {
		dir = filepath.Join(repoRoot(t), "bin", "tools", "openai-sdk")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "openai", "package.json")); err != nil {
		t.Fatalf("the openai SDK is missing (make openai-sdk installs it): %v", err)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is needed to run the openai SDK: %v", err)
	}
	base := startStructured(t, synthWithTemplate(t, toolTemplates["hermes"]), "--embeddings")
	cmd := exec.CommandContext(t.Context(), node, filepath.Join("testdata", "openai-sdk", "check.cjs"), base+"/v1")
	cmd.Env = append(os.Environ(), "OPENAI_SDK_DIR="+dir)
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("openai SDK check failed: %v", err)
	}
	for _, check := range []string{`"json_schema"`, `"json_schema stream"`, `"tools"`, `"tools stream"`, `"tool result"`,
		`"logprobs"`, `"logprobs stream"`, `"completions logprobs"`, `"n"`,
		`"responses"`, `"responses json_schema"`, `"responses tools"`, `"responses tool result"`, `"responses stream"`, `"responses stateless"`,
		`"embeddings"`} {
		if !strings.Contains(string(out), `{"check":`+check+`,"ok":true`) {
			t.Errorf("check %s did not pass", check)
		}
	}
}
