// Package inference is the API-neutral front of the server: it turns a
// generation request (prompt or chat messages, sampling options) into
// tokens, validates it, and submits it to the scheduler. The gRPC and HTTP
// transports call it and only translate formats and errors.
package inference

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/trace"

	"github.com/lumenllm/lumen/internal/chat"
	"github.com/lumenllm/lumen/internal/recorder"
	"github.com/lumenllm/lumen/internal/reqerr"
	"github.com/lumenllm/lumen/internal/scheduler"
	"github.com/lumenllm/lumen/internal/telemetry/semconv"
	"github.com/lumenllm/lumen/internal/toolcall"
)

// ErrRenderFailed marks chat template failures that are the template's
// fault, not the request's (it blew a time, stack or memory limit, or its
// renderer died): a server error, where other render errors are the
// client's (a conversation the template refuses, a prompt too large).
var ErrRenderFailed = errors.New("chat template failed")

// ErrLoading: the server is up but its model has not loaded yet (503 /
// UNAVAILABLE: retry shortly).
var ErrLoading = errors.New("the model is still loading; retry shortly")

// ErrUnknownModel: the request names a model this server does not serve.
var ErrUnknownModel = errors.New("unknown model")

// Tokenizer converts text to tokens and back; it must be safe for
// concurrent use.
type Tokenizer interface {
	Tokenize(text string, addSpecial, parseSpecial bool) ([]int32, error)
	// Detokenize is Tokenize's inverse for a prompt's tokens: a leading
	// BOS and the tokenizer's leading space are dropped, control tokens
	// give no text.
	Detokenize(tokens []int32) (string, error)
	// FIM returns the fill-in-the-middle tokens (prefix, suffix, middle);
	// ok is false for a vocabulary without them.
	FIM() (pre, suf, mid int32, ok bool)
	// ControlTokens are the tokens special parsing makes of their text,
	// longest text first.
	ControlTokens() []ControlToken
}

// ChatRenderer turns chat messages into a prompt (the model's template);
// tools are the functions offered, given to the template as its tools
// variable (nil: none). A render stops with ctx's error when ctx is done.
type ChatRenderer interface {
	Render(ctx context.Context, messages []chat.Message, tools []toolcall.Tool, addGenerationPrompt bool) (string, error)
}

// Submitter is the scheduler as seen from here.
type Submitter interface {
	Submit(ctx context.Context, r scheduler.Request) (<-chan scheduler.Event, error)
	// Validate checks a request against the scheduler's limits, as Submit
	// would, without submitting it.
	Validate(r scheduler.Request) error
	SlotContext() int
}

// Model describes the served model.
type Model struct {
	ID          string
	ContextSize int // tokens per request
	Created     time.Time
	OwnedBy     string
	// Dimensions is the length of its embedding vectors; 0 when the
	// server does not serve embeddings.
	Dimensions int
}

// Limits bound requests before they cost anything.
type Limits struct {
	// MaxPromptBytes caps prompt and message text (default 1 MiB).
	MaxPromptBytes int
	// MaxMessages caps chat messages (default 256).
	MaxMessages int
	// DefaultMaxTokens applies when a request gives none (default 256,
	// capped at the context).
	DefaultMaxTokens int
}

// RequestTracer starts a request's span before it is submitted (the
// scheduler's records end it) and ends it when submission fails.
type RequestTracer interface {
	StartRequest(ctx context.Context, info recorder.RequestInfo) context.Context
	Abort(ctx context.Context, err error)
	// ContentLimit is how many bytes of output text the scheduler keeps
	// for the request span (0: content is not recorded).
	ContentLimit() int
}

// Config builds a Service.
type Config struct {
	Model     Model
	Tokenizer Tokenizer
	Chat      ChatRenderer
	Scheduler Submitter
	Limits    Limits
	// Tracer, when set, traces every accepted request.
	Tracer RequestTracer
	// Grammars, when set, checks every grammar before it is submitted, so
	// that a bad one is refused with the engine's reason.
	Grammars GrammarChecker
	// ToolFormat is how the model writes tool calls.
	ToolFormat ToolFormat
	// VocabSize bounds logit_bias token ids (0: unchecked).
	VocabSize int
}

// Service validates, tokenizes and submits requests.
type Service struct {
	cfg Config
	// control is the tokenizer's control tokens, read on first use (the
	// vocabulary does not change).
	control func() controlSet
}

// New creates a Service.
func New(cfg Config) *Service {
	if cfg.Limits.MaxPromptBytes <= 0 {
		cfg.Limits.MaxPromptBytes = 1 << 20
	}
	if cfg.Limits.MaxMessages <= 0 {
		cfg.Limits.MaxMessages = 256
	}
	if cfg.Limits.DefaultMaxTokens <= 0 {
		cfg.Limits.DefaultMaxTokens = 256
	}
	s := &Service{cfg: cfg}
	s.control = sync.OnceValue(func() controlSet { return newControlSet(cfg.Tokenizer.ControlTokens()) })
	return s
}

// GenerateRequest is a transport-neutral generation request.
type GenerateRequest struct {
	// ID is the response id; one is made when empty.
	ID    string
	Model string // empty: the served model
	// Exactly one of Prompt, PromptTokens (used as given: no BOS is
	// added) and Messages.
	Prompt       string
	PromptTokens []int32
	Messages     []chat.Message
	// Suffix makes a fill-in-the-middle request: the model writes what
	// goes between Prompt (the prefix) and Suffix, prompted with its FIM
	// tokens (prefix, suffix, middle). Only for a text Prompt.
	Suffix string
	// MaxTokens: 0 takes the default.
	MaxTokens int
	Sampling  scheduler.SamplingParams
	Stop      []string
	// Constraint restricts the output (nil: free text).
	Constraint *Constraint
	// Tools offers functions to call (chat requests only).
	Tools Tools
	// NoCache computes the whole prompt, reusing no cached prefix.
	NoCache bool
	// User is the caller's end-user id, recorded on the request span.
	User string
	// Logprobs returns each generated token's log-probability and the
	// TopLogprobs most likely alternatives; PromptLogprobs those of the
	// prompt tokens too (the whole prompt is then computed).
	Logprobs       bool
	TopLogprobs    int
	PromptLogprobs bool
	// SharePrefill: other requests with the same prompt are submitted with
	// this one (n > 1); the prompt is computed once for all of them.
	SharePrefill bool
}

// Stream is an accepted request.
type Stream struct {
	ID           string
	Model        string
	PromptTokens int
	Events       <-chan scheduler.Event
	// TraceID is the request's trace ("" when untraced); SpanContext is
	// its request span, for traceparent response headers.
	TraceID     string
	SpanContext trace.SpanContext
	// ToolFormat is how the model writes tool calls when the request lets
	// it call tools; "" otherwise (the text is all content).
	ToolFormat toolcall.Format

	cancel context.CancelCauseFunc // nil for streams built outside Generate
}

// Tenant is the caller's tenant: the tenant.id baggage member (which the
// HTTP transport also sets from an X-Tenant-ID header), or "".
func Tenant(ctx context.Context) string {
	return baggage.FromContext(ctx).Member(semconv.BaggageTenantKey).Value()
}

// MaxTenantLen bounds a tenant id's length.
const MaxTenantLen = 64

// CheckTenant accepts "" (no tenant) or an id of at most MaxTenantLen
// letters, digits and . _ - : @ /. Tenants become metric labels, span
// attributes and log fields, so a client must not pick arbitrary bytes
// or sizes for them.
func CheckTenant(t string) error {
	if len(t) > MaxTenantLen {
		return reqerr.Invalid("tenant", "id is %d bytes; at most %d are allowed", len(t), MaxTenantLen)
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("._-:@/", c) >= 0
		if !ok {
			return reqerr.Invalid("tenant", "id %q has the character %q; allowed are letters, digits and . _ - : @ /", t, c)
		}
	}
	return nil
}

// Models lists the served models.
func (s *Service) Models() []Model { return []Model{s.cfg.Model} }

func (s *Service) checkModel(name string) error {
	if name != "" && name != s.cfg.Model.ID {
		return fmt.Errorf("model %q (this server serves %q): %w", name, s.cfg.Model.ID, ErrUnknownModel)
	}
	return nil
}

func checkText(field, text string, maxBytes int) error {
	if len(text) > maxBytes {
		return reqerr.Invalid(field, "is %d bytes; at most %d are allowed", len(text), maxBytes)
	}
	if !utf8.ValidString(text) {
		return reqerr.Invalid(field, "is not valid UTF-8")
	}
	return nil
}

// NumericLimit is the range of one numeric request field, checked before
// the value reaches the engine (and C, where an out-of-range integer
// wraps and a NaN poisons every logit).
type NumericLimit struct {
	Field    string // the API's name for it
	Min, Max float64
	get      func(scheduler.SamplingParams) float64
}

// SamplingLimits are the ranges of every numeric sampling field (Seed is
// a uint32 on every API, so needs none; logit_bias is checked by
// LogitBias). TestSamplingLimitsCoverEveryField keeps the table whole.
var SamplingLimits = []NumericLimit{
	{"temperature", 0, 2, func(p scheduler.SamplingParams) float64 { return float64(p.Temperature) }},
	{"top_k", 0, math.MaxInt32, func(p scheduler.SamplingParams) float64 { return float64(p.TopK) }},
	{"top_p", 0, 1, func(p scheduler.SamplingParams) float64 { return float64(p.TopP) }},
	{"min_p", 0, 1, func(p scheduler.SamplingParams) float64 { return float64(p.MinP) }},
	{"repetition_penalty", 0, 10, func(p scheduler.SamplingParams) float64 { return float64(p.RepeatPenalty) }},
	{"frequency_penalty", -2, 2, func(p scheduler.SamplingParams) float64 { return float64(p.FrequencyPenalty) }},
	{"presence_penalty", -2, 2, func(p scheduler.SamplingParams) float64 { return float64(p.PresencePenalty) }},
	// The scheduler also holds min_tokens to at most max_tokens.
	{"min_tokens", 0, math.MaxInt32, func(p scheduler.SamplingParams) float64 { return float64(p.MinTokens) }},
}

// ValidateSampling checks sampling options against SamplingLimits.
func ValidateSampling(p scheduler.SamplingParams) error {
	for _, l := range SamplingLimits {
		v := l.get(p)
		if math.IsNaN(v) || v < l.Min || v > l.Max {
			return reqerr.Invalid(l.Field, "must be between %v and %v, got %v", l.Min, l.Max, v)
		}
	}
	return nil
}

// timed runs f and widens p to cover it.
func timed(p *recorder.Phase, f func()) {
	start := time.Now()
	f()
	if p.Start.IsZero() {
		p.Start = start
	}
	p.End = time.Now()
}

// prompt renders and tokenizes the request's input, noting when it ran
// the chat template and the tokenizer in prep.
func (s *Service) prompt(ctx context.Context, req GenerateRequest, prep *recorder.RequestInfo) ([]int32, string, error) {
	if len(req.Tools.Tools) > 0 && len(req.Messages) == 0 {
		return nil, "", reqerr.Invalid("tools", "need messages (a chat request)")
	}
	lim := s.cfg.Limits
	var text string
	parseSpecial := false
	if len(req.PromptTokens) > 0 {
		if req.Prompt != "" || len(req.Messages) > 0 {
			return nil, "", reqerr.Invalid("prompt", "give one of a prompt, its tokens or messages")
		}
		if req.Suffix != "" {
			return nil, "", reqerr.Invalid("suffix", "needs a text prompt, not tokens")
		}
		for i, tok := range req.PromptTokens {
			if tok < 0 || (s.cfg.VocabSize > 0 && int(tok) >= s.cfg.VocabSize) {
				return nil, "", reqerr.Invalid(fmt.Sprintf("prompt[%d]", i), "token %d is not in the vocabulary (0-%d)", tok, s.cfg.VocabSize-1)
			}
		}
		// The text is only for the request span's content.
		text, _ = s.cfg.Tokenizer.Detokenize(req.PromptTokens)
		return req.PromptTokens, text, nil
	}
	switch {
	case req.Prompt != "" && len(req.Messages) > 0:
		return nil, "", reqerr.Invalid("prompt", "give either a prompt or messages, not both")
	case len(req.Messages) > 0:
		if len(req.Messages) > lim.MaxMessages {
			return nil, "", reqerr.Invalid("messages", "has %d messages; at most %d are allowed", len(req.Messages), lim.MaxMessages)
		}
		total := 0
		for i, m := range req.Messages {
			switch m.Role {
			case "system", "user", "assistant", "developer", "tool":
			default:
				return nil, "", reqerr.Invalid(fmt.Sprintf("messages[%d].role", i), "%q is not one of system, user, assistant, developer, tool", m.Role)
			}
			if err := checkText(fmt.Sprintf("messages[%d].content", i), m.Content, lim.MaxPromptBytes); err != nil {
				return nil, "", err
			}
			if len(m.ToolCalls) > 0 && m.Role != "assistant" {
				return nil, "", reqerr.Invalid(fmt.Sprintf("messages[%d].tool_calls", i), "only assistant messages carry tool calls")
			}
			for j, c := range m.ToolCalls {
				if err := checkText(fmt.Sprintf("messages[%d].tool_calls[%d].function.arguments", i, j), c.Arguments, lim.MaxPromptBytes); err != nil {
					return nil, "", err
				}
				total += len(c.Arguments)
			}
			total += len(m.Content)
		}
		if total > lim.MaxPromptBytes {
			return nil, "", reqerr.Invalid("messages", "total %d bytes; at most %d are allowed", total, lim.MaxPromptBytes)
		}
		msgs, tools := req.Messages, req.Tools.Tools
		if len(tools) > 0 && !s.cfg.ToolFormat.RendersTools {
			msgs, tools = withInstructions(msgs, s.cfg.ToolFormat.Format.Instructions(tools)), nil
		}
		var rendered string
		var err error
		timed(&prep.Template, func() { rendered, err = s.cfg.Chat.Render(ctx, msgs, tools, true) })
		if err != nil {
			return nil, "", renderError(ctx, err)
		}
		if control := s.control(); control.mentionedIn(msgs) {
			var toks []int32
			var text string
			timed(&prep.Tokenize, func() { toks, text, err = s.protectedTokens(ctx, msgs, tools, rendered, control.tokens) })
			if err != nil {
				return nil, "", err
			}
			return dedupBOS(toks), text, nil
		}
		// The template writes the model's control tokens as text.
		text, parseSpecial = rendered, true
	case req.Suffix != "":
		var toks []int32
		var text string
		var err error
		timed(&prep.Tokenize, func() { toks, text, err = s.fimPrompt(req) })
		return toks, text, err
	case req.Prompt != "":
		if err := checkText("prompt", req.Prompt, lim.MaxPromptBytes); err != nil {
			return nil, "", err
		}
		text = req.Prompt
	default:
		return nil, "", reqerr.Invalid("prompt", "is empty")
	}
	var toks []int32
	var err error
	timed(&prep.Tokenize, func() { toks, err = s.cfg.Tokenizer.Tokenize(text, true, parseSpecial) })
	if err != nil {
		return nil, "", reqerr.Invalid("prompt", "cannot be tokenized: %v", err)
	}
	if parseSpecial {
		toks = dedupBOS(toks)
	}
	return toks, text, nil
}

// fimPrompt is a fill-in-the-middle prompt, prefix-suffix-middle as the
// FIM-trained models (CodeLlama, StarCoder, Qwen-Coder) take it:
// [BOS] <fim_prefix> prefix <fim_suffix> suffix <fim_middle>.
func (s *Service) fimPrompt(req GenerateRequest) ([]int32, string, error) {
	if len(req.Messages) > 0 || len(req.PromptTokens) > 0 {
		return nil, "", reqerr.Invalid("suffix", "needs a text prompt")
	}
	pre, suf, mid, ok := s.cfg.Tokenizer.FIM()
	if !ok {
		return nil, "", reqerr.Invalid("suffix", "this model has no fill-in-the-middle tokens (FIM prefix, suffix and middle)")
	}
	for field, text := range map[string]string{"prompt": req.Prompt, "suffix": req.Suffix} {
		if err := checkText(field, text, s.cfg.Limits.MaxPromptBytes); err != nil {
			return nil, "", err
		}
	}
	if len(req.Prompt)+len(req.Suffix) > s.cfg.Limits.MaxPromptBytes {
		return nil, "", reqerr.Invalid("suffix", "prompt and suffix total more than %d bytes", s.cfg.Limits.MaxPromptBytes)
	}
	bos, err := s.cfg.Tokenizer.Tokenize("", true, false) // BOS where the model wants one
	if err != nil {
		return nil, "", reqerr.Invalid("prompt", "cannot be tokenized: %v", err)
	}
	prefix, err := s.cfg.Tokenizer.Tokenize(req.Prompt, false, false)
	if err != nil {
		return nil, "", reqerr.Invalid("prompt", "cannot be tokenized: %v", err)
	}
	suffix, err := s.cfg.Tokenizer.Tokenize(req.Suffix, false, false)
	if err != nil {
		return nil, "", reqerr.Invalid("suffix", "cannot be tokenized: %v", err)
	}
	toks := append(append(append(append(append(bos, pre), prefix...), suf), suffix...), mid)
	return toks, req.Prompt + req.Suffix, nil
}

// renderError classifies a failed render: the client's leaving, the
// template's fault (a server error), or the request's (invalid).
func renderError(ctx context.Context, err error) error {
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("chat template: %w", context.Cause(ctx))
	case errors.Is(err, ErrRenderFailed):
		return fmt.Errorf("%w: %w", ErrRenderFailed, err)
	}
	return reqerr.Invalid("messages", "chat template: %v", err)
}

// dedupBOS keeps one BOS where there are two: most chat templates print
// bos_token themselves, and the tokenizer adds another in front.
func dedupBOS(toks []int32) []int32 {
	if len(toks) >= 2 && toks[0] == toks[1] {
		return toks[1:]
	}
	return toks
}

// Generate validates req and submits it. Errors are *reqerr.InvalidError
// (bad input), ErrUnknownModel, reqerr.ErrQueueFull or
// reqerr.ErrDraining.
func (s *Service) Generate(ctx context.Context, req GenerateRequest) (*Stream, error) {
	// The request span, made only once the request is known to be valid,
	// is dated from here: its prepare child covers validation, the chat
	// template and tokenization, up to the submission.
	info := recorder.RequestInfo{Received: time.Now()}
	if err := s.checkModel(req.Model); err != nil {
		return nil, err
	}
	if err := CheckTenant(Tenant(ctx)); err != nil {
		return nil, err
	}
	if err := ValidateSampling(req.Sampling); err != nil {
		return nil, err
	}
	for i, st := range req.Stop {
		if err := checkText(fmt.Sprintf("stop[%d]", i), st, 1024); err != nil {
			return nil, err
		}
	}
	if req.TopLogprobs > 0 && !req.Logprobs && !req.PromptLogprobs {
		return nil, reqerr.Invalid("top_logprobs", "needs logprobs")
	}
	if err := validateTools(req.Tools); err != nil {
		return nil, err
	}
	if err := s.checkBias(req.Sampling.LogitBias); err != nil {
		return nil, err
	}
	useTools := req.Tools.uses()
	if useTools && req.Constraint != nil {
		return nil, reqerr.Invalid(req.Constraint.Field, "cannot be combined with tools unless tool_choice is \"none\"")
	}
	if req.Constraint != nil {
		g, err := req.Constraint.gbnf()
		if err != nil {
			return nil, err
		}
		if err := s.checkGrammar(req.Constraint.Field, g, nil); err != nil {
			return nil, err
		}
		req.Sampling.Grammar = g
	}
	format := s.cfg.ToolFormat.Format
	if useTools {
		c, err := format.Constraint(req.Tools.Tools, req.Tools.Choice, req.Tools.Parallel)
		if err != nil {
			return nil, reqerr.Invalid("tools", "%v", err)
		}
		if c.Grammar != "" {
			if err := s.checkGrammar("tools", c.Grammar, c.Triggers); err != nil {
				return nil, err
			}
		}
		req.Sampling.Grammar, req.Sampling.Triggers = c.Grammar, c.Triggers
	}
	toks, promptText, err := s.prompt(ctx, req, &info)
	if err != nil {
		return nil, err
	}
	maxTokens := req.MaxTokens
	if maxTokens == 0 {
		maxTokens = min(s.cfg.Limits.DefaultMaxTokens, s.cfg.Scheduler.SlotContext()-len(toks))
		maxTokens = max(maxTokens, 1)
	}
	id := req.ID
	if id == "" {
		id = NewID()
	}
	// Seed 0 means "unset": a fixed seed would make every sampled reply
	// to the same prompt identical.
	seedGiven := req.Sampling.Seed != 0
	if !seedGiven {
		req.Sampling.Seed = randomSeed()
	}
	sr := scheduler.Request{
		ID: id, Prompt: toks, MaxTokens: maxTokens, Sampling: req.Sampling, Stop: req.Stop,
		NoCache: req.NoCache || req.PromptLogprobs, SharePrefill: req.SharePrefill,
		Logprobs: req.Logprobs || req.PromptLogprobs, TopLogprobs: req.TopLogprobs, PromptLogprobs: req.PromptLogprobs,
	}
	if useTools {
		// Some families open a call with a control token ([TOOL_CALLS]):
		// the parser must see it.
		sr.Special = true
		sr.ToolCalls = func(out string) int {
			_, calls := format.Parse(out)
			return len(calls)
		}
	}
	// An invalid request is refused before it has a request span (the
	// transport's span shows the 400), whichever check refuses it; one
	// refused for capacity (queue full, draining) gets one, with
	// error.type.
	if err := s.cfg.Scheduler.Validate(sr); err != nil {
		return nil, err
	}
	if s.cfg.Tracer != nil {
		op := semconv.OperationCompletion
		if len(req.Messages) > 0 {
			op = semconv.OperationChat
		}
		// A chat's prompt is recorded as the model saw it: the messages
		// rendered through the chat template.
		var toolNames []string
		for _, t := range req.Tools.Tools {
			toolNames = append(toolNames, t.Name)
		}
		host, port := serverAddrOf(ctx)
		info.Operation, info.Model, info.MaxTokens, info.Sampling = op, s.cfg.Model.ID, maxTokens, req.Sampling
		info.Tenant, info.Prompt, info.User = Tenant(ctx), promptText, req.User
		info.OutputType, info.Tools, info.SeedGiven = req.Constraint.OutputType(), toolNames, seedGiven
		info.ServerAddress, info.ServerPort = host, port
		ctx = s.cfg.Tracer.StartRequest(ctx, info)
		sr.KeepText = s.cfg.Tracer.ContentLimit()
	}
	// The stream's own cancel lets Close stop the request whatever the
	// transport's reason to leave early.
	ctx, cancel := context.WithCancelCause(ctx)
	events, err := s.cfg.Scheduler.Submit(ctx, sr)
	if err != nil {
		cancel(nil)
		if s.cfg.Tracer != nil {
			s.cfg.Tracer.Abort(ctx, err)
		}
		return nil, err
	}
	st := &Stream{ID: id, Model: s.cfg.Model.ID, PromptTokens: len(toks), Events: events, cancel: cancel}
	if useTools {
		st.ToolFormat = format
	}
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		st.TraceID = sc.TraceID().String()
		st.SpanContext = sc
	}
	return st, nil
}

// LogitBias turns a request's logit_bias (token id → bias, as a client
// sent it) into sampling biases: each in [-100, 100], and -100 a ban, as
// OpenAI defines it. Transports call it; Generate checks the ids against
// the vocabulary.
func LogitBias(raw map[int32]float64) (map[int32]float32, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	out := make(map[int32]float32, len(raw))
	for tok, b := range raw {
		if !(b >= -100 && b <= 100) {
			return nil, reqerr.Invalid("logit_bias", "bias %v for token %d is outside [-100, 100]", b, tok)
		}
		out[tok] = float32(b)
		if b == -100 {
			out[tok] = float32(math.Inf(-1))
		}
	}
	return out, nil
}

// checkBias checks logit_bias: token ids in the vocabulary, biases in
// [-100, 100] (the transports turn -100 into a ban).
func (s *Service) checkBias(bias map[int32]float32) error {
	for tok, b := range bias {
		if tok < 0 || (s.cfg.VocabSize > 0 && int(tok) >= s.cfg.VocabSize) {
			return reqerr.Invalid("logit_bias", "token %d is not in the vocabulary (0-%d)", tok, s.cfg.VocabSize-1)
		}
		if !(b >= -100 && b <= 100) && !math.IsInf(float64(b), -1) {
			return reqerr.Invalid("logit_bias", "bias %v for token %d is outside [-100, 100]", b, tok)
		}
	}
	return nil
}

// Tokenize returns the tokens of text as the model sees a prompt.
func (s *Service) Tokenize(model, text string) ([]int32, error) {
	if err := s.checkModel(model); err != nil {
		return nil, err
	}
	if err := checkText("text", text, s.cfg.Limits.MaxPromptBytes); err != nil {
		return nil, err
	}
	return s.cfg.Tokenizer.Tokenize(text, true, false)
}

// MaxDetokenize bounds the tokens of one Detokenize.
const MaxDetokenize = 1 << 20

// Detokenize returns the text of a prompt's tokens.
func (s *Service) Detokenize(model string, tokens []int32) (string, error) {
	if err := s.checkModel(model); err != nil {
		return "", err
	}
	if len(tokens) > MaxDetokenize {
		return "", reqerr.Invalid("tokens", "has %d tokens; at most %d are allowed", len(tokens), MaxDetokenize)
	}
	for i, tok := range tokens {
		if tok < 0 || (s.cfg.VocabSize > 0 && int(tok) >= s.cfg.VocabSize) {
			return "", reqerr.Invalid(fmt.Sprintf("tokens[%d]", i), "token %d is not in the vocabulary (0-%d)", tok, s.cfg.VocabSize-1)
		}
	}
	text, err := s.cfg.Tokenizer.Detokenize(tokens)
	if err != nil {
		return "", reqerr.Invalid("tokens", "cannot be detokenized: %v", err)
	}
	return text, nil
}

// RenderChat renders messages (with tools offered, when given) through
// the model's chat template, as a chat request's prompt, and returns the
// prompt's text and tokens: what Generate would feed the model.
func (s *Service) RenderChat(ctx context.Context, model string, messages []chat.Message, tools []toolcall.Tool) (string, []int32, error) {
	if err := s.checkModel(model); err != nil {
		return "", nil, err
	}
	if len(messages) == 0 {
		return "", nil, reqerr.Invalid("messages", "is required and must not be empty")
	}
	t := Tools{Tools: tools, Choice: toolcall.Choice{Mode: toolcall.Auto}, Parallel: true}
	if err := validateTools(t); err != nil {
		return "", nil, err
	}
	toks, text, err := s.prompt(ctx, GenerateRequest{Messages: messages, Tools: t}, &recorder.RequestInfo{})
	if err != nil {
		return "", nil, err
	}
	return text, toks, nil
}

func randomSeed() uint32 {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return max(1, uint32(b[0])|uint32(b[1])<<8|uint32(b[2])<<16|uint32(b[3])<<24)
}

// NewID makes a random request id.
func NewID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// API is what the transports call; *Service implements it and transport
// tests substitute fakes.
type API interface {
	Generate(ctx context.Context, req GenerateRequest) (*Stream, error)
	Tokenize(model, text string) ([]int32, error)
	Detokenize(model string, tokens []int32) (string, error)
	RenderChat(ctx context.Context, model string, messages []chat.Message, tools []toolcall.Tool) (string, []int32, error)
	Embed(ctx context.Context, req EmbedRequest) (*Embeddings, error)
	Models() []Model
}

var _ API = (*Service)(nil)

// Readiness reports whether the server should take traffic: false while
// the model loads and once draining starts.
type Readiness interface {
	Ready() bool
}
