package telemetry

import (
	"os"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

// TestMain unsets every OTEL_* variable first, so that the developer's
// or CI's environment cannot reach Setup (the SDK and the exporters read
// the process environment; tests set what they need with t.Setenv), and
// fails the package if a test leaves a goroutine behind: the export
// loop, the sampling file poller and the exporters' connections must all
// stop on Shutdown.
func TestMain(m *testing.M) {
	unsetOTEL()
	goleak.VerifyTestMain(m)
}

// unsetOTEL removes the OTEL_* variables from the process environment.
func unsetOTEL() {
	for _, kv := range os.Environ() {
		if key, _, _ := strings.Cut(kv, "="); strings.HasPrefix(key, "OTEL_") {
			os.Unsetenv(key)
		}
	}
}
