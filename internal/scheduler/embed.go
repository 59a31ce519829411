package scheduler

import (
	"fmt"

	"github.com/lumenllm/lumen/internal/reqerr"
)

// Embedder computes embeddings; it is called on the scheduler's goroutine
// only, so it may use the engine's model and its own context freely.
type Embedder interface {
	// Embed returns one vector per input, in order.
	Embed(inputs [][]int32) ([][]float32, error)
	// MaxInputTokens is the most tokens one input may have.
	MaxInputTokens() int
}

// MaxEmbedInputs bounds the inputs of one embeddings request.
const MaxEmbedInputs = 2048

func (s *Scheduler) validateEmbed(r Request) error {
	e := s.cfg.Embedder
	switch {
	case e == nil:
		return reqerr.Invalid("input", "embeddings are not served here (lumen serve --embeddings turns them on)")
	case len(r.Embed) == 0:
		return reqerr.Invalid("input", "is empty")
	case len(r.Embed) > MaxEmbedInputs:
		return reqerr.Invalid("input", "has %d inputs; at most %d are allowed", len(r.Embed), MaxEmbedInputs)
	}
	for i, in := range r.Embed {
		if len(in) == 0 || len(in) > e.MaxInputTokens() {
			return reqerr.Invalid(fmt.Sprintf("input[%d]", i), "has %d tokens; 1 to %d are allowed", len(in), e.MaxInputTokens())
		}
	}
	return nil
}

// embed serves an embeddings request at once, on the loop's goroutine.
func (l *loop) embed(req *request) {
	l.s.queued.Add(-1)
	t := &req.timings
	t.Admitted = l.s.cfg.Now()
	tokens := 0
	for _, in := range req.r.Embed {
		tokens += len(in)
	}
	res := Result{Finish: FinishStop, PromptTokens: tokens, Slot: -1}
	vecs, err := l.s.cfg.Embedder.Embed(req.r.Embed)
	if err != nil {
		res.Finish, err = FinishError, fmt.Errorf("%w: embed: %w", reqerr.ErrEngine, err)
	} else {
		res.Embeddings = vecs
	}
	// The vectors are ready when the pass ends: that is their "first
	// token", so TTFT and the prefill phase are the compute time.
	t.FirstToken = l.s.cfg.Now()
	t.PrefillChunks = append(t.PrefillChunks, Chunk{Start: t.Admitted, End: t.FirstToken, Tokens: tokens})
	l.finishRequest(req, res, err)
}
