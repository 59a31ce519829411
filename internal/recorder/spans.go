package recorder

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/lumenllm/lumen/internal/reqerr"
	"github.com/lumenllm/lumen/internal/scheduler"
	"github.com/lumenllm/lumen/internal/telemetry/semconv"
	"github.com/lumenllm/lumen/internal/telemetry/w3c"
)

// RequestInfo is what the inference layer knows as a request starts.
type RequestInfo struct {
	Operation string // semconv.OperationChat or semconv.OperationCompletion
	Model     string
	MaxTokens int
	Sampling  scheduler.SamplingParams
	Tenant    string
	// Prompt is recorded only when content recording is on.
	Prompt string
	// User is the caller's end-user id ("" when not given).
	User string
	// OutputType is "text" or "json" (gen_ai.output.type).
	OutputType string
	// Tools names the functions offered.
	Tools []string
	// SeedGiven: the request chose Sampling.Seed (gen_ai.request.seed);
	// otherwise the server did (lumen.sampling.seed only).
	SeedGiven bool
	// ServerAddress and ServerPort are the listener that received the
	// request (server.address, server.port); "" and 0 when unknown.
	ServerAddress string
	ServerPort    int
	// Received is when the inference layer took the request up: the
	// request span starts there, and its prepare child runs from there
	// to the submission. Template and Tokenize are when the chat template
	// (zero for a plain prompt) and the tokenizer ran, within it.
	Received           time.Time
	Template, Tokenize Phase
}

// Phase is when a piece of a request's work ran.
type Phase struct{ Start, End time.Time }

// GrammarOverruleShare is the share of a request's tokens overruled by
// its grammar from which the request span gets a grammar_overruled event.
const GrammarOverruleShare = 0.25

// TracerOptions configure a Tracer.
type TracerOptions struct {
	// Device is where the model runs: "cpu" or "gpu:N" (gpu.id N).
	Device string
	// RecordContent puts prompts on spans, truncated to ContentMax bytes.
	RecordContent bool
	ContentMax    int
	// KVSize is the KV cache size, for batch spans.
	KVSize int
	// BatchTracerProvider starts the batch spans (one root span per
	// engine step, semconv.SpanBatch), which are sampled on their own
	// terms (telemetry.Telemetry.BatchTracerProvider). Nil: the tracer
	// provider that starts the request spans.
	BatchTracerProvider trace.TracerProvider
	// Logger gets one line per finished or refused request, logged with
	// the request's context (see LogHandler for its trace_id and
	// span_id). Nil discards them.
	Logger *slog.Logger
}

// Tracer turns requests and the scheduler's records into spans and
// metrics. It implements scheduler.Observer.
type Tracer struct {
	tracer  trace.Tracer
	batch   trace.Tracer // starts batch spans
	metrics *Metrics
	opts    TracerOptions
	gpu     attribute.KeyValue // gpu.id, derived once from opts.Device
	// steps are the sampled batch spans of each running request (by its
	// request span), so its prefill and decode spans can link back to
	// them. The scheduler calls Step and Finished from its one goroutine;
	// the lock (never contended there) keeps other callers safe.
	stepsMu sync.Mutex
	steps   map[trace.SpanID]*stepLinks
}

// MaxStepLinks bounds the links from one prefill or decode span to its
// batch steps (the first ones; the rest are counted).
const MaxStepLinks = 8

// stepLinks are a request's batch steps, prefill and decode apart.
type stepLinks struct {
	prefill, decode         []trace.Link
	prefillMore, decodeMore int
}

func (l *stepLinks) add(sc trace.SpanContext, prefill bool) {
	list, more := &l.decode, &l.decodeMore
	if prefill {
		list, more = &l.prefill, &l.prefillMore
	}
	if len(*list) < MaxStepLinks {
		*list = append(*list, trace.Link{SpanContext: sc})
	} else {
		*more++
	}
}

var _ scheduler.Observer = (*Tracer)(nil)

// NewTracer builds a Tracer whose request spans (and their children)
// are started by tp and batch spans by opts.BatchTracerProvider (tp when
// nil); metrics may be nil.
func NewTracer(tp trace.TracerProvider, m *Metrics, opts TracerOptions) *Tracer {
	if opts.ContentMax <= 0 {
		opts.ContentMax = DefaultContentMax
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	const scope = "github.com/lumenllm/lumen"
	batchTP := opts.BatchTracerProvider
	if batchTP == nil {
		batchTP = tp
	}
	return &Tracer{tracer: tp.Tracer(scope), batch: batchTP.Tracer(scope), metrics: m, opts: opts, gpu: gpuID(opts.Device)}
}

type infoKey struct{}

// StartRequest starts the request span ("{operation} {model}"); the
// returned context carries it (and info) to the scheduler, whose records
// end it when the request finishes.
func (t *Tracer) StartRequest(ctx context.Context, info RequestInfo) context.Context {
	attrs := []attribute.KeyValue{
		semconv.AttrOperation.String(info.Operation),
		semconv.AttrProvider.String(semconv.ProviderName),
		semconv.AttrRequestModel.String(info.Model),
		semconv.AttrMaxTokens.Int(info.MaxTokens),
		semconv.AttrTemperature.Float64(decimal(info.Sampling.Temperature)),
		semconv.AttrTopP.Float64(decimal(info.Sampling.TopP)),
		semconv.AttrEffectiveSeed.Int64(int64(info.Sampling.Seed)),
	}
	if info.Sampling.TopK > 0 {
		attrs = append(attrs, semconv.AttrTopK.Float64(float64(info.Sampling.TopK)))
	}
	if info.SeedGiven {
		attrs = append(attrs, semconv.AttrSeed.Int64(int64(info.Sampling.Seed)))
	}
	if info.Tenant != "" {
		attrs = append(attrs, semconv.AttrTenant.String(info.Tenant))
	}
	if info.ServerAddress != "" {
		attrs = append(attrs, semconv.AttrServerAddress.String(info.ServerAddress))
	}
	if info.ServerPort > 0 {
		attrs = append(attrs, semconv.AttrServerPort.Int(info.ServerPort))
	}
	if info.OutputType != "" {
		attrs = append(attrs, semconv.AttrOutputType.String(info.OutputType))
	}
	if info.User != "" {
		attrs = append(attrs, semconv.AttrUser.String(info.User))
	}
	if len(info.Tools) > 0 {
		attrs = append(attrs, semconv.AttrToolsOffered.StringSlice(info.Tools))
	}
	if t.opts.RecordContent && info.Prompt != "" {
		attrs = append(attrs, semconv.AttrPrompt.String(truncate(info.Prompt, t.opts.ContentMax, false)))
	}
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindInternal), trace.WithAttributes(attrs...)}
	if !info.Received.IsZero() {
		opts = append(opts, trace.WithTimestamp(info.Received))
	}
	ctx, _ = t.tracer.Start(ctx, info.Operation+" "+info.Model, opts...)
	return context.WithValue(ctx, infoKey{}, info)
}

// ContentLimit is how many bytes of prompt and output text go on spans:
// 0 unless content recording is on. The inference layer asks the
// scheduler to keep that much of the output for Finished.
func (t *Tracer) ContentLimit() int {
	if !t.opts.RecordContent {
		return 0
	}
	return t.opts.ContentMax
}

// Abort ends a request span whose submission was refused (queue full,
// shutdown), recording why.
func (t *Tracer) Abort(ctx context.Context, err error) {
	span := trace.SpanFromContext(ctx)
	if span.IsRecording() {
		t.prepareSpan(ctx, time.Now())
	}
	recordError(span, err)
	span.SetStatus(codes.Error, err.Error())
	span.End()
	info, _ := ctx.Value(infoKey{}).(RequestInfo)
	t.opts.Logger.LogAttrs(ctx, slog.LevelWarn, "request refused",
		slog.String("model", info.Model), slog.String("tenant", info.Tenant), slog.Any("err", err))
}

// decimal is f as the client wrote it: the shortest decimal that is f as
// a float32 (0.7, not float64(float32(0.7)) = 0.699999988079071).
func decimal(f float32) float64 {
	v, _ := strconv.ParseFloat(strconv.FormatFloat(float64(f), 'g', -1, 32), 64)
	return v
}

// truncate cuts s to at most n bytes and marks with "…" that text is
// missing: cut here, or, with more, cut before s was handed over (the
// scheduler keeps only the start of an output).
func truncate(s string, n int, more bool) string {
	if len(s) > n {
		// Cutting may split a character; drop its partial bytes.
		return strings.ToValidUTF8(s[:n], "") + "…"
	}
	if more {
		return s + "…"
	}
	return s
}

func ms(d time.Duration) float64 { return scheduler.Millis(d) }

// gpuID is the gpu.id attribute for a device label: the device index of
// "gpu:N", or "cpu".
func gpuID(device string) attribute.KeyValue {
	if i := strings.LastIndexByte(device, ':'); i >= 0 {
		if n, err := strconv.Atoi(device[i+1:]); err == nil {
			return semconv.AttrGPUID.Int(n)
		}
	}
	return semconv.AttrGPUID.String("cpu")
}

// Finished ends the request span, adding its queue, prefill and decode
// children from the scheduler's timings, and records the metrics.
func (t *Tracer) Finished(ctx context.Context, r scheduler.Result) {
	info, _ := ctx.Value(infoKey{}).(RequestInfo)
	span := trace.SpanFromContext(ctx)
	tm := r.Timings
	if span.IsRecording() {
		t.childSpans(ctx, r)
		tps := 0.0
		if d := tm.Decode(); d > 0 && r.CompletionTokens > 1 {
			tps = float64(r.CompletionTokens-1) / d.Seconds()
		}
		span.SetAttributes(
			semconv.AttrResponseID.String(r.ID),
			semconv.AttrResponseModel.String(info.Model),
			semconv.AttrFinishReasons.StringSlice([]string{string(r.Finish)}),
			semconv.AttrInputTokens.Int(r.PromptTokens),
			semconv.AttrOutputTokens.Int(r.CompletionTokens),
			semconv.AttrCachedTokens.Int(r.CachedTokens),
			semconv.AttrCacheSource.String(cacheSource(r.CacheSource)),
			semconv.AttrQueueMs.Float64(ms(tm.Queue())),
			semconv.AttrPrefillMs.Float64(ms(tm.Prefill())),
			semconv.AttrTTFTMs.Float64(ms(tm.TTFT())),
			semconv.AttrDecodeMs.Float64(ms(tm.Decode())),
			semconv.AttrTokensPerSec.Float64(tps),
			semconv.AttrSlot.Int(r.Slot),
			t.gpu,
		)
		if t.opts.RecordContent && r.Text != "" {
			span.SetAttributes(semconv.AttrCompletion.String(truncate(r.Text, t.opts.ContentMax, r.TextTruncated)))
		}
		if len(info.Tools) > 0 {
			span.SetAttributes(semconv.AttrToolCalls.Int(r.ToolCalls))
		}
		if r.Constrained {
			span.SetAttributes(semconv.AttrGrammar.Bool(true), semconv.AttrGrammarOverrule.Int(r.GrammarRejected))
			if r.CompletionTokens > 0 && float64(r.GrammarRejected) >= GrammarOverruleShare*float64(r.CompletionTokens) {
				span.AddEvent(semconv.EventGrammarOverruled, trace.WithTimestamp(tm.Finished), trace.WithAttributes(
					semconv.AttrGrammarOverrule.Int(r.GrammarRejected), semconv.AttrOutputTokens.Int(r.CompletionTokens)))
			}
		}
		setOutcome(span, r, ctx)
		span.End(trace.WithTimestamp(tm.Finished))
	}
	if t.metrics != nil {
		t.metrics.finished(span.SpanContext(), info, r)
	}
	t.logFinished(ctx, info, r)
}

// logFinished writes the request's access-log line: what was asked, how
// it ended, and where its time went.
func (t *Tracer) logFinished(ctx context.Context, info RequestInfo, r scheduler.Result) {
	level := slog.LevelInfo
	if r.Finish == scheduler.FinishError {
		level = slog.LevelError
	}
	tm := r.Timings
	attrs := []slog.Attr{
		slog.String("id", r.ID),
		slog.String("operation", info.Operation),
		slog.String("model", info.Model),
		slog.String("finish", string(r.Finish)),
		slog.Int("prompt_tokens", r.PromptTokens),
		slog.Int("completion_tokens", r.CompletionTokens),
		slog.Int("cached_tokens", r.CachedTokens),
		slog.Float64("queue_ms", ms(tm.Queue())),
		slog.Float64("prefill_ms", ms(tm.Prefill())),
		slog.Float64("ttft_ms", ms(tm.TTFT())),
		slog.Float64("decode_ms", ms(tm.Decode())),
	}
	if info.Tenant != "" {
		attrs = append(attrs, slog.String("tenant", info.Tenant))
	}
	if r.Err != nil {
		attrs = append(attrs, slog.Any("err", r.Err))
	}
	t.opts.Logger.LogAttrs(ctx, level, "request finished", attrs...)
}

// setOutcome marks errors; a request its caller abandoned is not a
// server error, but its span says why it ended.
func setOutcome(span trace.Span, r scheduler.Result, ctx context.Context) {
	switch r.Finish {
	case scheduler.FinishError:
		if r.Err != nil {
			recordError(span, r.Err)
		} else {
			span.SetAttributes(semconv.AttrErrorType.String(semconv.ErrorEngine))
		}
		span.SetStatus(codes.Error, "engine failure")
	case scheduler.FinishCancelled:
		reason := "client cancelled"
		span.SetAttributes(semconv.AttrErrorType.String(ErrorType(r.Err)))
		if errors.Is(r.Err, reqerr.ErrShutdown) {
			// The server's doing, unlike a client's cancel: an error.
			reason = "server shutdown"
			span.SetStatus(codes.Error, reason)
		}
		span.SetAttributes(semconv.AttrCancelReason.String(reason))
		span.AddEvent("cancelled", trace.WithAttributes(semconv.AttrCancelReason.String(reason)), trace.WithTimestamp(r.Timings.Finished))
	}
}

func (t *Tracer) childSpans(ctx context.Context, r scheduler.Result) {
	tm := r.Timings
	links := &stepLinks{}
	t.stepsMu.Lock()
	if id := trace.SpanContextFromContext(ctx).SpanID(); t.steps[id] != nil {
		links = t.steps[id]
		delete(t.steps, id)
	}
	t.stepsMu.Unlock()
	startLinked := func(name string, at time.Time, to []trace.Link, attrs ...attribute.KeyValue) trace.Span {
		_, s := t.tracer.Start(ctx, name, trace.WithTimestamp(at), trace.WithSpanKind(trace.SpanKindInternal),
			trace.WithAttributes(attrs...), trace.WithLinks(to...))
		return s
	}
	start := func(name string, at time.Time, attrs ...attribute.KeyValue) trace.Span {
		return startLinked(name, at, nil, attrs...)
	}
	t.prepareSpan(ctx, tm.Enqueued)
	admitted := tm.Admitted
	if admitted.IsZero() {
		admitted = tm.Finished
	}
	q := start(semconv.SpanQueue, tm.Enqueued)
	q.End(trace.WithTimestamp(admitted))
	if len(r.Embeddings) > 0 {
		e := start(semconv.SpanEmbed, tm.Admitted, semconv.AttrEmbedTokens.Int(r.PromptTokens), semconv.AttrEmbedInputs.Int(len(r.Embeddings)), t.gpu)
		e.End(trace.WithTimestamp(tm.FirstToken))
		return
	}
	if tm.Admitted.IsZero() || r.Slot < 0 {
		return // never held a slot
	}
	prefillEnd := tm.FirstToken
	if prefillEnd.IsZero() {
		prefillEnd = tm.Finished
	}
	attrs := []attribute.KeyValue{semconv.AttrPrefillTokens.Int(r.PromptTokens), semconv.AttrPrefillCached.Int(r.CachedTokens),
		semconv.AttrChunks.Int(len(tm.PrefillChunks)), t.gpu}
	if r.CacheSource != scheduler.CacheNone {
		attrs = append(attrs, semconv.AttrCacheSource.String(string(r.CacheSource)))
	}
	if !tm.CacheRestored.IsZero() {
		attrs = append(attrs, semconv.AttrCacheRestoreMs.Float64(ms(tm.CacheRestored.Sub(tm.Admitted))))
	}
	attrs = append(attrs, semconv.AttrStepsUnlinked.Int(links.prefillMore))
	p := startLinked(semconv.SpanPrefill, tm.Admitted, links.prefill, attrs...)
	for _, c := range tm.PrefillChunks {
		p.AddEvent("chunk", trace.WithTimestamp(c.End), trace.WithAttributes(semconv.AttrChunkTokens.Int(c.Tokens)))
	}
	if tm.FirstToken.IsZero() && r.Finish != scheduler.FinishStop && r.Finish != scheduler.FinishLength {
		setOutcome(p, r, ctx)
	}
	p.End(trace.WithTimestamp(prefillEnd))
	if tm.FirstToken.IsZero() {
		return
	}
	d := startLinked(semconv.SpanDecode, tm.FirstToken, links.decode,
		semconv.AttrDecodeTokens.Int(r.CompletionTokens), semconv.AttrSteps.Int(tm.DecodeSteps),
		semconv.AttrMeanBatch.Float64(tm.MeanBatch()), semconv.AttrStepsUnlinked.Int(links.decodeMore), t.gpu)
	setOutcome(d, r, ctx)
	d.End(trace.WithTimestamp(tm.Finished))
}

// prepareSpan records the request's prepare child, from its Received to
// end (the submission), with template and tokenize children where they
// ran. Nothing without a Received.
func (t *Tracer) prepareSpan(ctx context.Context, end time.Time) {
	info, _ := ctx.Value(infoKey{}).(RequestInfo)
	if info.Received.IsZero() {
		return
	}
	pctx, p := t.tracer.Start(ctx, semconv.SpanPrepare, trace.WithTimestamp(info.Received), trace.WithSpanKind(trace.SpanKindInternal))
	for _, ph := range []struct {
		name string
		at   Phase
	}{{semconv.SpanTemplate, info.Template}, {semconv.SpanTokenize, info.Tokenize}} {
		if ph.at.Start.IsZero() {
			continue
		}
		_, c := t.tracer.Start(pctx, ph.name, trace.WithTimestamp(ph.at.Start), trace.WithSpanKind(trace.SpanKindInternal))
		c.End(trace.WithTimestamp(ph.at.End))
	}
	p.End(trace.WithTimestamp(end))
}

// Step records one engine step as its own root span, linked to the
// request spans of the sequences in it.
func (t *Tracer) Step(si scheduler.StepInfo) {
	links := make([]trace.Link, 0, len(si.Seqs))
	for _, s := range si.Seqs {
		sc := trace.SpanContextFromContext(s.Ctx)
		if !sc.IsValid() {
			continue
		}
		links = append(links, trace.Link{SpanContext: sc, Attributes: []attribute.KeyValue{
			semconv.AttrSlot.Int(s.Slot), semconv.AttrBatchPrefill.Int(s.PrefillTokens), attribute.Bool("lumen.decode", s.Decode),
		}})
	}
	// A root of its own trace (the context has no parent), marked random
	// (WithNewRoot would drop the flag).
	_, span := t.batch.Start(w3c.RandomRoot(context.Background()), semconv.SpanBatch,
		trace.WithTimestamp(si.Start), trace.WithLinks(links...),
		trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithAttributes(
			semconv.AttrBatchSize.Int(len(si.Seqs)),
			semconv.AttrBatchPrefill.Int(si.PrefillTokens),
			semconv.AttrBatchDecode.Int(si.DecodeTokens),
			semconv.AttrKVUsed.Int(si.KVUsed),
			semconv.AttrKVSize.Int(t.opts.KVSize),
			t.gpu,
		))
	if !si.DecodeStart.IsZero() {
		span.SetAttributes(
			semconv.AttrStepBuildMS.Float64(ms(si.DecodeStart.Sub(si.Start))),
			semconv.AttrStepDecodeMS.Float64(ms(si.End.Sub(si.DecodeStart))),
			semconv.AttrStepSampleMS.Float64(ms(si.Sample)),
			semconv.AttrStepEmitMS.Float64(ms(si.Emit)),
			semconv.AttrStepGapMS.Float64(ms(si.Gap)),
		)
	}
	if si.Err != nil {
		span.RecordError(si.Err)
		span.SetStatus(codes.Error, "decode failed")
	}
	span.End(trace.WithTimestamp(si.End))
	// Links point both ways: the request's phase spans link the steps
	// that carried it (only those exported: sampled batch spans).
	if bsc := span.SpanContext(); bsc.IsSampled() {
		t.stepsMu.Lock()
		defer t.stepsMu.Unlock()
		for _, s := range si.Seqs {
			rsc := trace.SpanContextFromContext(s.Ctx)
			if !rsc.IsValid() {
				continue
			}
			l := t.steps[rsc.SpanID()]
			if l == nil {
				if t.steps == nil {
					t.steps = map[trace.SpanID]*stepLinks{}
				}
				l = &stepLinks{}
				t.steps[rsc.SpanID()] = l
			}
			l.add(bsc, s.PrefillTokens > 0)
		}
	}
	if t.metrics != nil {
		t.metrics.step(si)
	}
}

// cacheSource names where a request's cached prompt tokens came from,
// "none" when nothing was reused.
func cacheSource(s scheduler.CacheSource) string {
	if s == scheduler.CacheNone {
		return "none"
	}
	return string(s)
}

// ErrorType is error.type for err: a low-cardinality kind, never the Go
// type of a wrapped error.
func ErrorType(err error) string {
	switch {
	case err == nil:
		return semconv.ErrorOther
	case errors.Is(err, reqerr.ErrQueueFull):
		return semconv.ErrorQueueFull
	case errors.Is(err, reqerr.ErrDraining):
		return semconv.ErrorDraining
	case errors.Is(err, reqerr.ErrShutdown):
		return semconv.ErrorShutdown
	case errors.Is(err, reqerr.ErrInvalid):
		return semconv.ErrorInvalid
	case errors.Is(err, reqerr.ErrEngine):
		return semconv.ErrorEngine
	case errors.Is(err, context.Canceled):
		return semconv.ErrorCancelled
	case errors.Is(err, context.DeadlineExceeded):
		return semconv.ErrorTimeout
	}
	return semconv.ErrorOther
}

// recordError marks span with error.type and an exception event whose
// exception.type is that kind too (RecordError would name the Go type of
// the outermost wrapper, e.g. *fmt.wrapError).
func recordError(span trace.Span, err error) {
	kind := ErrorType(err)
	span.SetAttributes(semconv.AttrErrorType.String(kind))
	span.AddEvent("exception", trace.WithAttributes(semconv.AttrExceptionType.String(kind), semconv.AttrExceptionMessage.String(err.Error())))
}
