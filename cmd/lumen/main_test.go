package main

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestMain lets this test binary stand in for lumen as the chat template
// worker that serve starts (os.Executable() internal-chat-render), so the
// in-process servers of these tests render through the real sandbox.
//
// Before the tests run it unsets every OTEL_* variable: the in-process
// servers' telemetry (the OpenTelemetry SDK, the exporters and package
// telemetry) reads them from the process environment, so a developer's
// or CI's OTEL_* must not reach them. A test that wants one sets it with
// t.Setenv.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == renderWorkerCommand {
		if err := runRenderWorker(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	for _, kv := range os.Environ() {
		if key, _, _ := strings.Cut(kv, "="); strings.HasPrefix(key, "OTEL_") {
			os.Unsetenv(key)
		}
	}
	os.Exit(m.Run())
}
