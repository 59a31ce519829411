package recorder

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/lumenllm/lumen/internal/reqerr"
	"github.com/lumenllm/lumen/internal/scheduler"
	"github.com/lumenllm/lumen/internal/telemetry"
	"github.com/lumenllm/lumen/internal/telemetry/semconv"
)

// jsonLines decodes each line the JSON handler wrote.
func jsonLines(t *testing.T, b *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if line == "" {
			continue
		}
		m := map[string]any{}
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func TestRequestLogLinesCarryTheirSpan(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(telemetry.LogHandler(slog.NewJSONHandler(&buf, nil)))
	tr, rec, _ := newRecorded(t, TracerOptions{Device: "cpu", Logger: log})

	ctx := tr.StartRequest(context.Background(), RequestInfo{Operation: semconv.OperationChat, Model: "m", Tenant: "acme"})
	tr.Finished(ctx, result("req-1", scheduler.FinishLength))
	refused := tr.StartRequest(context.Background(), RequestInfo{Operation: semconv.OperationCompletion, Model: "m"})
	tr.Abort(refused, reqerr.ErrQueueFull)
	log.Info("not request-scoped")

	spans := rec.Ended()
	reqSpan, abortSpan := byName(spans, "chat m"), byName(spans, "text_completion m")
	lines := jsonLines(t, &buf)
	if len(lines) != 3 {
		t.Fatalf("%d log lines, want 3: %s", len(lines), buf.String())
	}
	tests := []struct {
		line          map[string]any
		msg, traceID  string
		spanID, level string
	}{
		{lines[0], "request finished", reqSpan.SpanContext().TraceID().String(), reqSpan.SpanContext().SpanID().String(), "INFO"},
		{lines[1], "request refused", abortSpan.SpanContext().TraceID().String(), abortSpan.SpanContext().SpanID().String(), "WARN"},
	}
	for _, tt := range tests {
		if tt.line["msg"] != tt.msg || tt.line[telemetry.LogTraceID] != tt.traceID || tt.line[telemetry.LogSpanID] != tt.spanID || tt.line["level"] != tt.level {
			t.Errorf("log line %v: want msg %q level %s trace_id %s span_id %s", tt.line, tt.msg, tt.level, tt.traceID, tt.spanID)
		}
	}
	want := map[string]any{"id": "req-1", "finish": "length", "tenant": "acme", "prompt_tokens": 12.0, "completion_tokens": 5.0,
		"cached_tokens": 4.0, "queue_ms": 10.0, "prefill_ms": 20.0, "ttft_ms": 30.0, "decode_ms": 40.0}
	for k, v := range want {
		if lines[0][k] != v {
			t.Errorf("request finished line: %s = %v, want %v", k, lines[0][k], v)
		}
	}
	if !strings.Contains(lines[1]["err"].(string), "queue") {
		t.Errorf("refused line err = %v", lines[1]["err"])
	}
	if _, ok := lines[2][telemetry.LogTraceID]; ok {
		t.Errorf("a line logged without a span carries trace_id: %v", lines[2])
	}
}

func TestLogHandlerKeepsAttrsAndGroups(t *testing.T) {
	var buf bytes.Buffer
	tr, _, _ := newRecorded(t, TracerOptions{})
	ctx := tr.StartRequest(context.Background(), RequestInfo{Operation: semconv.OperationChat, Model: "m"})
	log := slog.New(telemetry.LogHandler(slog.NewJSONHandler(&buf, nil))).With("component", "http")
	log.ErrorContext(ctx, "failed", "err", errors.New("boom"))
	line := jsonLines(t, &buf)[0]
	if line["component"] != "http" || line[telemetry.LogTraceID] == nil || line["err"] != "boom" {
		t.Errorf("line %v: want component, trace_id and err", line)
	}
}
