package inference

import (
	"time"

	"github.com/lumenllm/lumen/internal/recorder"
	"github.com/lumenllm/lumen/internal/scheduler"
)

// A request's reply, as transports see it: a Stream of Events, the last
// carrying the Result. These name the scheduler's types, so that a
// transport needs this package alone (and the errors of reqerr) and never
// imports the scheduler.
type (
	// Event is one step of a reply: text and tokens, or the Result.
	Event = scheduler.Event
	// Result ends a reply: finish reason, usage and timings.
	Result = scheduler.Result
	// Timings are a request's phases.
	Timings = scheduler.Timings
	// TokenInfo is one generated token with its logprobs.
	TokenInfo = scheduler.TokenInfo
	// TokenLogprob is one candidate token and its log probability.
	TokenLogprob = scheduler.TokenLogprob
	// SamplingParams are a request's sampling settings.
	SamplingParams = scheduler.SamplingParams
	// FinishReason says why generation stopped.
	FinishReason = scheduler.FinishReason
)

// Why generation stopped.
const (
	FinishStop      = scheduler.FinishStop
	FinishLength    = scheduler.FinishLength
	FinishCancelled = scheduler.FinishCancelled
	FinishError     = scheduler.FinishError
)

// MaxTopLogprobs is the most alternatives a token's logprobs may list.
const MaxTopLogprobs = scheduler.MaxTopLogprobs

// Millis is the one conversion of a duration to the milliseconds that
// replies, spans and metrics report, so that they agree to the digit.
func Millis(d time.Duration) float64 { return scheduler.Millis(d) }

// ErrorType is a failed request's error.type, a low-cardinality kind
// (queue_full, shutdown, …): the one the request span records, for a
// transport marking its own span.
func ErrorType(err error) string { return recorder.ErrorType(err) }
