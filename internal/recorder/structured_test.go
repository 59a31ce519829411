package recorder

import (
	"context"
	"slices"
	"testing"

	"github.com/lumenllm/lumen/internal/scheduler"
	"github.com/lumenllm/lumen/internal/telemetry/semconv"
)

// Constrained output and tool use show on the request span: output type,
// tools offered, calls made, grammar cost, and an event when the grammar
// overruled the model on many tokens.
func TestStructuredOutputOnSpans(t *testing.T) {
	tests := []struct {
		name      string
		info      RequestInfo
		res       func(scheduler.Result) scheduler.Result
		want      map[string]any
		absent    []string
		wantEvent bool
	}{
		{
			name: "json schema, grammar overruled 3 of 5 tokens",
			info: RequestInfo{Operation: semconv.OperationChat, Model: "m", OutputType: "json"},
			res: func(r scheduler.Result) scheduler.Result {
				r.Constrained, r.GrammarRejected = true, 3
				return r
			},
			want:      map[string]any{"gen_ai.output.type": "json", "lumen.grammar": true, "lumen.grammar.overruled_tokens": int64(3)},
			absent:    []string{"lumen.tools.offered", "lumen.tool_calls"},
			wantEvent: true,
		},
		{
			name: "grammar overruled 1 of 5: no event",
			info: RequestInfo{Operation: semconv.OperationCompletion, Model: "m", OutputType: "text"},
			res: func(r scheduler.Result) scheduler.Result {
				r.Constrained, r.GrammarRejected = true, 1
				return r
			},
			want: map[string]any{"gen_ai.output.type": "text", "lumen.grammar.overruled_tokens": int64(1)},
		},
		{
			name: "tools and calls",
			info: RequestInfo{Operation: semconv.OperationChat, Model: "m", OutputType: "text", Tools: []string{"a", "b"}, User: "u7"},
			res: func(r scheduler.Result) scheduler.Result {
				r.Constrained, r.ToolCalls = true, 2
				return r
			},
			want: map[string]any{"lumen.tools.offered": []string{"a", "b"}, "lumen.tool_calls": int64(2), "user.id": "u7"},
		},
		{
			name:   "free text",
			info:   RequestInfo{Operation: semconv.OperationChat, Model: "m", OutputType: "text"},
			res:    func(r scheduler.Result) scheduler.Result { return r },
			want:   map[string]any{"gen_ai.output.type": "text"},
			absent: []string{"lumen.grammar", "lumen.grammar.overruled_tokens", "lumen.tool_calls", "user.id"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, rec, _ := newRecorded(t, TracerOptions{})
			ctx := tr.StartRequest(context.Background(), tt.info)
			tr.Finished(ctx, tt.res(result("r", scheduler.FinishStop)))
			var req = byName(rec.Ended(), tt.info.Operation+" m")
			if req == nil {
				t.Fatal("no request span")
			}
			for k, want := range tt.want {
				got, ok := attr(req, k)
				if ws, isSlice := want.([]string); isSlice {
					gs, _ := got.([]string)
					if !slices.Equal(gs, ws) {
						t.Errorf("%s = %v, want %v", k, got, want)
					}
					continue
				}
				if !ok || got != want {
					t.Errorf("%s = %v (%v), want %v", k, got, ok, want)
				}
			}
			for _, k := range tt.absent {
				if v, ok := attr(req, k); ok {
					t.Errorf("%s = %v, want it absent", k, v)
				}
			}
			found := false
			for _, ev := range req.Events() {
				found = found || ev.Name == semconv.EventGrammarOverruled
			}
			if found != tt.wantEvent {
				t.Errorf("grammar_overruled event: %v, want %v", found, tt.wantEvent)
			}
		})
	}
}
