// Package loadgen owns Lumen's load generator: it drives a running server
// with a reproducible mix of synthetic, streamed generation requests —
// closed loop at a fixed concurrency or open loop with Poisson arrivals —
// measures every request from the client side (time to first token, time
// per output token, end-to-end latency), and summarises the run in a
// Report. Servers are reached through a Target: gRPC and HTTP (NDJSON)
// implementations live here.
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"
)

// Config describes a run.
type Config struct {
	// Concurrency, in closed-loop mode, is how many requests are kept in
	// flight: the next one is sent as soon as one ends. Exactly one of
	// Concurrency and Rate is set.
	Concurrency int
	// Rate, in open-loop mode, is the mean number of requests sent per
	// second, with exponentially distributed gaps (Poisson arrivals) and
	// no limit on how many are in flight. The first is sent at once.
	Rate float64

	// Requests stops the run after this many have been sent; 0 is no
	// limit (then Duration must be set).
	Requests int
	// Duration stops sending once this long has passed since the start;
	// 0 is no limit. Requests in flight then still run to their end.
	Duration time.Duration

	// PromptTokens is the mean prompt length in tokens. Prompts are
	// synthetic text of about this many tokens, sized by the target's
	// own token count of a sample when it is a TokenCounter; the report
	// counts the tokens the server says it saw.
	PromptTokens int
	// PromptSpread draws each prompt length uniformly from
	// PromptTokens × (1 ± PromptSpread), in [0, 1].
	PromptSpread float64
	// PromptPool, when positive, draws every prompt from a pool of this
	// many (drawn once, uniformly chosen per request), so prompts repeat
	// as with a prefix cache's favourite workload; 0: every prompt is new.
	PromptPool int
	// PrefixTokens, when positive, starts every prompt with the same text
	// of about this many tokens (a shared system prompt), before the
	// request's own PromptTokens.
	PrefixTokens int
	// MaxTokens is the mean max_tokens of a request.
	MaxTokens int
	// MaxTokensSpread draws each max_tokens uniformly from MaxTokens ×
	// (1 ± MaxTokensSpread), in [0, 1].
	MaxTokensSpread float64
	// CancelFraction of the requests are cancelled on purpose after a
	// random number (1 to max_tokens−1) of received text chunks, in [0, 1].
	CancelFraction float64
	// Temperature is every request's sampling temperature, in [0, 2].
	Temperature float32
	// Model is the model requests name; empty is the served model.
	Model string
	// Constraint constrains every request's output (default: none).
	Constraint Constraint
	// Seed seeds the generator's own randomness (prompts, lengths,
	// cancellations, arrival gaps, sampler seeds): the same seed sends the
	// same requests in the same order to the same model.
	Seed uint64

	// Clock measures time and waits between arrivals; nil is the real
	// clock.
	Clock Clock
}

// Validate reports the first field out of range.
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("loadgen: %w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	fraction := func(f float64) bool { return f >= 0 && f <= 1 }
	switch {
	case c.Concurrency < 0:
		return bad("concurrency must not be negative")
	case c.Rate < 0 || math.IsNaN(c.Rate) || math.IsInf(c.Rate, 0):
		return bad("rate must be a positive number of requests per second")
	case (c.Concurrency > 0) == (c.Rate > 0):
		return bad("set exactly one of concurrency and rate")
	case c.Requests < 0:
		return bad("requests must not be negative")
	case c.Duration < 0:
		return bad("duration must not be negative")
	case c.Requests == 0 && c.Duration == 0:
		return bad("set a number of requests or a duration")
	case c.PromptTokens < 1:
		return bad("prompt tokens must be at least 1")
	case c.PromptPool < 0:
		return bad("prompt pool must not be negative")
	case c.PrefixTokens < 0:
		return bad("prefix tokens must not be negative")
	case c.MaxTokens < 1:
		return bad("max tokens must be at least 1")
	case !fraction(c.PromptSpread):
		return bad("prompt spread must be in [0, 1]")
	case !fraction(c.MaxTokensSpread):
		return bad("max tokens spread must be in [0, 1]")
	case !fraction(c.CancelFraction):
		return bad("cancel fraction must be in [0, 1]")
	case !(c.Temperature >= 0 && c.Temperature <= 2):
		return bad("temperature must be in [0, 2]")
	case c.Constraint != "" && c.Constraint != ConstraintNone && c.Constraint != ConstraintJSONSchema &&
		c.Constraint != ConstraintToolCall && c.Constraint != ConstraintToolPrompt:
		return bad("constraint must be none, json_schema, tool_call or tool_prompt, not %q", c.Constraint)
	}
	return nil
}

// ErrInvalidConfig is wrapped by Validate's errors.
var ErrInvalidConfig = errors.New("invalid configuration")

// Request is one generation request as a Target sends it.
type Request struct {
	Model       string
	Prompt      string
	MaxTokens   int
	Temperature float32
	// Seed is the sampler's seed, never 0 (which servers read as unset).
	Seed uint32
	// Constraint constrains the output.
	Constraint Constraint
}

// Constraint is a kind of constrained output a run asks for.
type Constraint string

// Constraints. Their schemas leave a string and an array unbounded, so a
// random-weights model rarely completes them and requests run to
// max_tokens like unconstrained ones: the comparison is per token.
const (
	ConstraintNone       Constraint = "none"
	ConstraintJSONSchema Constraint = "json_schema" // output follows BenchSchema
	ConstraintToolCall   Constraint = "tool_call"   // a chat request that must call BenchTool (gRPC only)
	// ConstraintToolPrompt is tool_call's request with tool_choice none:
	// the same prompt, no grammar, so the two isolate the grammar's cost.
	ConstraintToolPrompt Constraint = "tool_prompt"
)

// BenchSchema is the JSON Schema of ConstraintJSONSchema, and the
// parameters of the tool of ConstraintToolCall.
const BenchSchema = `{"type":"object","properties":{"title":{"type":"string"},"year":{"type":"integer"},` +
	`"tags":{"type":"array","items":{"type":"string"}}},"required":["title","year","tags"]}`

// BenchTool is the function of ConstraintToolCall.
const BenchTool = "record_story"

// Result is the server's accounting of a finished request, from the
// stream's final message.
type Result struct {
	FinishReason     string
	PromptTokens     int
	CachedTokens     int
	CompletionTokens int
	// QueueMS and PrefillMS are the server's timings.
	QueueMS, PrefillMS float64
}

// Target is a server under load.
type Target interface {
	// Name describes the target in reports, such as "grpc 127.0.0.1:9090".
	Name() string
	// Stream sends req as a streamed generation. It calls onText, in
	// order and before it returns, for every non-empty piece of text as
	// it arrives, and returns the final accounting once the stream ends.
	// When onText returns an error, Stream stops reading, closes the
	// stream and returns that error (wrapped or not); cancelling ctx
	// closes the stream too, so the server frees the request's slot.
	// Failures the server reports are best returned as *RequestError,
	// which names their kind.
	Stream(ctx context.Context, req Request, onText func(string) error) (Result, error)
}

// TokenCounter is a Target that can count the tokens of a text as a
// model (empty: the served one) sees it, which lets Run size prompts in
// tokens of that model rather than by a fixed guess.
type TokenCounter interface {
	CountTokens(ctx context.Context, model, text string) (int, error)
}

// RequestError is a failed request, with the kind it is counted under in
// the report: a gRPC code ("ResourceExhausted"), an HTTP status ("HTTP
// 429"), an error inside a stream ("stream: internal_error"), or
// "transport".
type RequestError struct {
	Kind string
	Err  error
}

func (e *RequestError) Error() string { return e.Kind + ": " + e.Err.Error() }
func (e *RequestError) Unwrap() error { return e.Err }

// kindOf is the report's name for a failure.
func kindOf(err error) string {
	var re *RequestError
	if errors.As(err, &re) {
		return re.Kind
	}
	return "other"
}

// Clock is the time source of a run.
type Clock interface {
	Now() time.Time
	// Sleep waits for d or until ctx ends, returning ctx's error then.
	Sleep(ctx context.Context, d time.Duration) error
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// errCancelOnPurpose ends a stream the run chose to cancel.
var errCancelOnPurpose = errors.New("loadgen: request cancelled on purpose")

// outcome is what became of one request.
type outcome struct {
	how           ending
	kind          string // of a failure
	err           error  // of a failure
	plannedCancel bool
	chunks        int
	sent          time.Time
	first, last   time.Time // text chunks
	end           time.Time
	res           Result
}

// ending is how a request ended.
type ending int

const (
	endOK ending = iota
	endCancelled
	endFailed
	endInterrupted
)

// Run sends requests to target as cfg says, waits for every one to end,
// and reports on them. If ctx ends first, sending stops, requests in
// flight are cancelled (counted as interrupted), and Run returns the
// report of what happened so far with an error.
func Run(ctx context.Context, cfg Config, target Target) (Report, error) {
	if err := cfg.Validate(); err != nil {
		return Report{}, err
	}
	clock := cfg.Clock
	if clock == nil {
		clock = realClock{}
	}
	charsPerToken, measured := calibrate(ctx, target, cfg.Model, cfg.Seed)
	if !measured {
		charsPerToken = defaultCharsPerToken
	}
	mix := newMix(cfg, charsPerToken)
	var slots chan struct{}
	if cfg.Concurrency > 0 {
		slots = make(chan struct{}, cfg.Concurrency)
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		outcomes []outcome
	)
	start := clock.Now()
	var offset time.Duration // of the next arrival, in rate mode
	for i := 0; cfg.Requests == 0 || i < cfg.Requests; i++ {
		p := mix.next()
		if slots != nil {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
			}
		} else {
			if i > 0 {
				offset += mix.gap()
			}
			if cfg.Duration > 0 && offset >= cfg.Duration {
				break
			}
			_ = clock.Sleep(ctx, start.Add(offset).Sub(clock.Now()))
		}
		if ctx.Err() != nil || cfg.Duration > 0 && clock.Now().Sub(start) >= cfg.Duration {
			break // a slot taken here is never needed again
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := runOne(ctx, clock, target, p)
			if slots != nil {
				<-slots
			}
			mu.Lock()
			outcomes = append(outcomes, o)
			mu.Unlock()
		}()
	}
	wg.Wait()
	rep := newReport(cfg, target.Name(), outcomes, clock.Now().Sub(start))
	rep.PromptCharsPerToken, rep.PromptCharsPerTokenMeasured = charsPerToken, measured
	if ctx.Err() != nil {
		return rep, fmt.Errorf("loadgen: run interrupted: %w", context.Cause(ctx))
	}
	return rep, nil
}

// runOne sends one request and times it.
func runOne(ctx context.Context, clock Clock, target Target, p planned) outcome {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	o := outcome{plannedCancel: p.cancelAfter > 0}
	stopped := false
	o.sent = clock.Now()
	res, err := target.Stream(ctx, p.req, func(string) error {
		now := clock.Now()
		if o.chunks == 0 {
			o.first = now
		}
		o.last = now
		o.chunks++
		if p.cancelAfter > 0 && o.chunks >= p.cancelAfter {
			stopped = true
			cancel() // close the stream even if the target keeps reading
			return errCancelOnPurpose
		}
		return nil
	})
	o.end = clock.Now()
	switch {
	case stopped:
		o.how = endCancelled
	case err == nil:
		o.how, o.res = endOK, res
	case ctx.Err() != nil:
		o.how, o.err = endInterrupted, err
	default:
		o.how, o.kind, o.err = endFailed, kindOf(err), err
	}
	return o
}
