package recorder

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves a goroutine behind: the
// export loop, the sampling file poller and the exporters' connections
// must all stop on Shutdown.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
