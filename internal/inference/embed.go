package inference

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/lumenllm/lumen/internal/recorder"
	"github.com/lumenllm/lumen/internal/reqerr"
	"github.com/lumenllm/lumen/internal/scheduler"
	"github.com/lumenllm/lumen/internal/telemetry/semconv"
)

// EmbedInput is one input of an embeddings request: text, or tokens used
// as given.
type EmbedInput struct {
	Text   string
	Tokens []int32
}

// EmbedRequest asks for one vector per input.
type EmbedRequest struct {
	Model  string
	Inputs []EmbedInput
	User   string
}

// Embeddings are the vectors of an EmbedRequest's inputs, in order.
type Embeddings struct {
	Model   string
	Vectors [][]float32
	// PromptTokens counts the inputs' tokens.
	PromptTokens int
	TraceID      string
}

// Embed tokenizes the inputs and has the scheduler embed them (through
// its queue, like generation). Errors are as Generate's.
func (s *Service) Embed(ctx context.Context, req EmbedRequest) (*Embeddings, error) {
	info := recorder.RequestInfo{Received: time.Now()} // as in Generate
	if err := s.checkModel(req.Model); err != nil {
		return nil, err
	}
	if err := CheckTenant(Tenant(ctx)); err != nil {
		return nil, err
	}
	if len(req.Inputs) == 0 {
		return nil, reqerr.Invalid("input", "is empty")
	}
	if len(req.Inputs) > scheduler.MaxEmbedInputs {
		return nil, reqerr.Invalid("input", "has %d inputs; at most %d are allowed", len(req.Inputs), scheduler.MaxEmbedInputs)
	}
	inputs := make([][]int32, len(req.Inputs))
	total := 0
	for i, in := range req.Inputs {
		field := fmt.Sprintf("input[%d]", i)
		if in.Tokens != nil {
			for _, tok := range in.Tokens {
				if tok < 0 || (s.cfg.VocabSize > 0 && int(tok) >= s.cfg.VocabSize) {
					return nil, reqerr.Invalid(field, "token %d is not in the vocabulary (0-%d)", tok, s.cfg.VocabSize-1)
				}
			}
			inputs[i] = in.Tokens
			continue
		}
		if in.Text == "" {
			return nil, reqerr.Invalid(field, "is empty")
		}
		if err := checkText(field, in.Text, s.cfg.Limits.MaxPromptBytes); err != nil {
			return nil, err
		}
		total += len(in.Text)
		if total > s.cfg.Limits.MaxPromptBytes {
			return nil, reqerr.Invalid("input", "totals more than %d bytes", s.cfg.Limits.MaxPromptBytes)
		}
		var toks []int32
		var err error
		timed(&info.Tokenize, func() { toks, err = s.cfg.Tokenizer.Tokenize(in.Text, true, false) })
		if err != nil {
			return nil, reqerr.Invalid(field, "cannot be tokenized: %v", err)
		}
		inputs[i] = toks
	}
	sr := scheduler.Request{ID: NewID(), Embed: inputs}
	// Invalid requests have no request span (as in Generate).
	if err := s.cfg.Scheduler.Validate(sr); err != nil {
		return nil, err
	}
	if s.cfg.Tracer != nil {
		host, port := serverAddrOf(ctx)
		info.Operation, info.Model, info.Tenant, info.User = semconv.OperationEmbeddings, s.cfg.Model.ID, Tenant(ctx), req.User
		info.ServerAddress, info.ServerPort = host, port
		ctx = s.cfg.Tracer.StartRequest(ctx, info)
	}
	events, err := s.cfg.Scheduler.Submit(ctx, sr)
	if err != nil {
		if s.cfg.Tracer != nil {
			s.cfg.Tracer.Abort(ctx, err)
		}
		return nil, err
	}
	var traceID string
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		traceID = sc.TraceID().String()
	}
	for ev := range events {
		if !ev.Done {
			continue
		}
		if ev.Err != nil {
			return nil, ev.Err
		}
		return &Embeddings{Model: s.cfg.Model.ID, Vectors: ev.Result.Embeddings, PromptTokens: ev.Result.PromptTokens, TraceID: traceID}, nil
	}
	return nil, fmt.Errorf("%w: embeddings stream ended without a result", reqerr.ErrEngine)
}
