package main

import (
	"os"

	"github.com/lumenllm/lumen/internal/chat/sandbox"
)

// renderWorkerCommand is the hidden command serve starts its chat
// template workers with (sandbox.Config.Command). It is not in usage: it
// speaks the sandbox's protocol on stdin and stdout, not to people.
const renderWorkerCommand = "internal-chat-render"

// runRenderWorker is a chat template worker: it renders templates for the
// server that started it until its stdin closes. It uses the process's
// real stdin and stdout, whatever env says, because they are the pipes
// to the parent.
func runRenderWorker() error {
	return sandbox.ServeWorker(os.Stdin, os.Stdout)
}
