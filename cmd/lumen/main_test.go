package main

import (
	"fmt"
	"os"
	"testing"
)

// TestMain lets this test binary stand in for lumen as the chat template
// worker that serve starts (os.Executable() internal-chat-render), so the
// in-process servers of these tests render through the real sandbox.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == renderWorkerCommand {
		if err := runRenderWorker(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}
