// Package semconv names what Lumen's telemetry records: span names,
// attribute keys and the header and baggage keys of tenants. GenAI keys
// follow the OpenTelemetry semantic conventions for generative AI;
// lumen.* keys are Lumen's. It imports nothing of Lumen's, so offline
// tools (lumen trace analyze) can read spans without the SDK, the
// exporters or the scheduler.
package semconv

import "go.opentelemetry.io/otel/attribute"

// Span names and attribute keys, in one place. GenAI keys follow the
// OpenTelemetry semantic conventions for generative AI; lumen.* keys are
// ours.
const (
	// SpanPrepare is a request's work before its submission: validation,
	// the chat template (SpanTemplate) and tokenization (SpanTokenize).
	SpanPrepare  = "prepare"
	SpanTemplate = "template"
	SpanTokenize = "tokenize"
	SpanQueue    = "queue"
	SpanPrefill  = "prefill"
	SpanDecode   = "decode"
	// SpanEmbed is an embeddings request's computing pass.
	SpanEmbed = "embed"
	// SpanBatch is the root span of one engine step; sampling strategies
	// can name it as an operation.
	SpanBatch = "batch"

	// OperationChat, OperationCompletion and OperationEmbeddings are
	// gen_ai.operation.name values.
	OperationChat       = "chat"
	OperationCompletion = "text_completion"
	OperationEmbeddings = "embeddings"
	// ProviderName is gen_ai.provider.name for models Lumen serves.
	ProviderName = "lumen"
)

// error.type values.
const (
	ErrorQueueFull = "queue_full"
	ErrorDraining  = "draining"
	ErrorShutdown  = "shutdown"
	ErrorInvalid   = "invalid_request"
	ErrorEngine    = "engine_error"
	ErrorCancelled = "cancelled"
	ErrorTimeout   = "timeout"
	ErrorOther     = "_OTHER"
)

// Attribute keys.
const (
	AttrOperation    = attribute.Key("gen_ai.operation.name")
	AttrProvider     = attribute.Key("gen_ai.provider.name")
	AttrRequestModel = attribute.Key("gen_ai.request.model")
	AttrMaxTokens    = attribute.Key("gen_ai.request.max_tokens")
	AttrTemperature  = attribute.Key("gen_ai.request.temperature")
	AttrTopP         = attribute.Key("gen_ai.request.top_p")
	AttrTopK         = attribute.Key("gen_ai.request.top_k")
	AttrSeed         = attribute.Key("gen_ai.request.seed")
	// AttrEffectiveSeed is the seed sampling used, the server's when the
	// request gave none.
	AttrEffectiveSeed = attribute.Key("lumen.sampling.seed")
	AttrResponseID    = attribute.Key("gen_ai.response.id")
	AttrResponseModel = attribute.Key("gen_ai.response.model")
	// AttrErrorType is error.type: a low-cardinality kind of failure (see
	// the ErrorType values) on failed, refused and cancelled requests.
	AttrErrorType        = attribute.Key("error.type")
	AttrExceptionType    = attribute.Key("exception.type")
	AttrExceptionMessage = attribute.Key("exception.message")
	AttrFinishReasons    = attribute.Key("gen_ai.response.finish_reasons")
	AttrInputTokens      = attribute.Key("gen_ai.usage.input_tokens")
	AttrOutputTokens     = attribute.Key("gen_ai.usage.output_tokens")
	AttrPrompt           = attribute.Key("gen_ai.prompt")
	AttrCompletion       = attribute.Key("gen_ai.completion")

	AttrQueueMs      = attribute.Key("lumen.queue_ms")
	AttrPrefillMs    = attribute.Key("lumen.prefill_ms")
	AttrTTFTMs       = attribute.Key("lumen.time_to_first_token_ms")
	AttrDecodeMs     = attribute.Key("lumen.decode_ms")
	AttrTokensPerSec = attribute.Key("lumen.tokens_per_second")
	AttrCachedTokens = attribute.Key("lumen.prompt_tokens_cached")
	// AttrCacheSource says where the cached prompt tokens came from: slot,
	// shared (another slot's cells) or host (restored from host memory);
	// AttrCacheRestoreMs is how long readying the slot's cells took.
	AttrCacheSource    = attribute.Key("lumen.prefix_cache.source")
	AttrCacheRestoreMs = attribute.Key("lumen.prefix_cache.restore_ms")
	AttrTenant         = attribute.Key("tenant.id")
	// AttrServerAddress and AttrServerPort are the local address and port
	// of the listener that received the request.
	AttrServerAddress = attribute.Key("server.address")
	AttrServerPort    = attribute.Key("server.port")
	AttrSlot          = attribute.Key("lumen.slot")
	AttrChunks        = attribute.Key("lumen.prefill.chunks")
	// Per-phase token counts, on the phase spans: gen_ai.usage.* stays on
	// the request span only, so a backend summing it over a trace counts
	// each token once.
	AttrPrefillTokens = attribute.Key("lumen.prefill.tokens")
	AttrPrefillCached = attribute.Key("lumen.prefill.cached_tokens")
	AttrDecodeTokens  = attribute.Key("lumen.decode.tokens")
	AttrEmbedTokens   = attribute.Key("lumen.embed.tokens")
	AttrEmbedInputs   = attribute.Key("lumen.embeddings.inputs")
	AttrSteps         = attribute.Key("lumen.decode.steps")
	// AttrStepsUnlinked counts a phase span's batch steps beyond the ones
	// it links (recorder.MaxStepLinks).
	AttrStepsUnlinked = attribute.Key("lumen.steps.unlinked")
	AttrMeanBatch     = attribute.Key("lumen.decode.mean_batch_size")
	AttrGPUID         = attribute.Key("gpu.id")
	AttrDevice        = attribute.Key("lumen.device")
	// AttrModel names the served model on the resource (requests carry
	// gen_ai.request.model).
	AttrModel = attribute.Key("lumen.model")

	AttrBatchSize    = attribute.Key("lumen.batch.size")
	AttrBatchPrefill = attribute.Key("lumen.batch.prefill_tokens")
	AttrBatchDecode  = attribute.Key("lumen.batch.decode_tokens")
	// A step's phases in milliseconds (scheduler.StepInfo): building the
	// batch, inside the engine's decode, sampling, text and events, and
	// the loop's own work since the previous step.
	AttrStepBuildMS  = attribute.Key("lumen.step.build_ms")
	AttrStepDecodeMS = attribute.Key("lumen.step.decode_ms")
	AttrStepSampleMS = attribute.Key("lumen.step.sample_ms")
	AttrStepEmitMS   = attribute.Key("lumen.step.emit_ms")
	AttrStepGapMS    = attribute.Key("lumen.step.gap_ms")
	AttrKVUsed       = attribute.Key("lumen.kv_cache.used_cells")
	AttrKVSize       = attribute.Key("lumen.kv_cache.size_cells")
	AttrChunkTokens  = attribute.Key("lumen.chunk.tokens")
	AttrCancelReason = attribute.Key("lumen.cancel_reason")
	// Structured output and tools.
	AttrOutputType      = attribute.Key("gen_ai.output.type")
	AttrUser            = attribute.Key("user.id")
	AttrToolsOffered    = attribute.Key("lumen.tools.offered")
	AttrToolCalls       = attribute.Key("lumen.tool_calls")
	AttrGrammar         = attribute.Key("lumen.grammar")
	AttrGrammarOverrule = attribute.Key("lumen.grammar.overruled_tokens")
	// EventGrammarOverruled marks a request whose grammar overruled the
	// model on at least GrammarOverruleShare of its tokens: each of those
	// cost a pass over the vocabulary.
	EventGrammarOverruled = "grammar_overruled"
	BaggageTenantKey      = "tenant.id"
	HeaderTenant          = "X-Tenant-ID"
)
