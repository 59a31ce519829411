package httpserver

import (
	"encoding/json"
	"strings"
	"testing"
)

const toolBody = `{"messages":[{"role":"user","content":"time?"}],` +
	`"tools":[{"type":"function","function":{"name":"get_time","parameters":{"type":"object"}}}]`

// The model's call text becomes message.tool_calls with finish_reason
// tool_calls; content is null when the reply is only calls.
func TestChatToolCallReply(t *testing.T) {
	tests := []struct {
		name        string
		texts       []string
		wantContent *string
		wantCalls   int
		wantFinish  string
	}{
		{
			name:       "only a call",
			texts:      []string{"<tool_call>\n{\"name\": \"get_time\", ", "\"arguments\": {\"zone\": \"UTC\"}}\n</tool_call>"},
			wantCalls:  1,
			wantFinish: "tool_calls",
		},
		{
			name:        "text then a call",
			texts:       []string{"Checking. ", "<tool_call>{\"name\": \"get_time\", \"arguments\": {}}</tool_call>"},
			wantContent: ptr("Checking."),
			wantCalls:   1,
			wantFinish:  "tool_calls",
		},
		{
			name:        "malformed call stays text",
			texts:       []string{"<tool_call>{\"name\": oops}</tool_call>"},
			wantContent: ptr("<tool_call>{\"name\": oops}</tool_call>"),
			wantFinish:  "stop",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFake()
			fake.texts = tt.texts
			ts, _ := serve(t, Config{API: fake})
			resp := do(t, ts, "POST", chatPath, toolBody+"}")
			if resp.status != 200 {
				t.Fatalf("status %d: %s", resp.status, resp.body)
			}
			var out struct {
				Choices []struct {
					Message struct {
						Role      string  `json:"role"`
						Content   *string `json:"content"`
						ToolCalls []struct {
							ID       string `json:"id"`
							Type     string `json:"type"`
							Function struct {
								Name      string `json:"name"`
								Arguments string `json:"arguments"`
							} `json:"function"`
						} `json:"tool_calls"`
					} `json:"message"`
					FinishReason string `json:"finish_reason"`
				} `json:"choices"`
			}
			if err := json.Unmarshal(resp.body, &out); err != nil {
				t.Fatal(err)
			}
			c := out.Choices[0]
			if c.FinishReason != tt.wantFinish || len(c.Message.ToolCalls) != tt.wantCalls {
				t.Fatalf("finish %q with %d calls, want %q with %d: %s", c.FinishReason, len(c.Message.ToolCalls), tt.wantFinish, tt.wantCalls, resp.body)
			}
			if (c.Message.Content == nil) != (tt.wantContent == nil) || (c.Message.Content != nil && strings.TrimSpace(*c.Message.Content) != *tt.wantContent) {
				t.Errorf("content %v, want %v (%s)", c.Message.Content, tt.wantContent, resp.body)
			}
			for _, call := range c.Message.ToolCalls {
				if !strings.HasPrefix(call.ID, "call_") || call.Type != "function" || call.Function.Name != "get_time" || !json.Valid([]byte(call.Function.Arguments)) {
					t.Errorf("call %+v", call)
				}
			}
		})
	}
}

// Streamed, the text before a call goes out as content at once; the
// call comes as one delta.tool_calls chunk with index 0, then the finish.
func TestChatToolCallStream(t *testing.T) {
	fake := newFake()
	fake.texts = []string{"Checking. ", "<tool_", "call>{\"name\": \"get_time\", \"arguments\": {\"zone\": \"UTC\"}}</tool_call>"}
	ts, _ := serve(t, Config{API: fake})
	resp := do(t, ts, "POST", chatPath, toolBody+`,"stream":true}`)
	if resp.status != 200 {
		t.Fatalf("status %d: %s", resp.status, resp.body)
	}
	var content strings.Builder
	var calls []map[string]any
	var finish string
	for _, line := range strings.Split(string(resp.body), "\n") {
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok || data == "[DONE]" {
			continue
		}
		var chunk struct {
			Choices []struct {
				Delta struct {
					Content   *string          `json:"content"`
					ToolCalls []map[string]any `json:"tool_calls"`
				} `json:"delta"`
				FinishReason *string `json:"finish_reason"`
			} `json:"choices"`
		}
		if err := json.Unmarshal([]byte(data), &chunk); err != nil {
			t.Fatalf("%s: %v", data, err)
		}
		for _, c := range chunk.Choices {
			if c.Delta.Content != nil {
				if strings.Contains(*c.Delta.Content, "tool_call") {
					t.Errorf("call text leaked into content: %q", *c.Delta.Content)
				}
				content.WriteString(*c.Delta.Content)
			}
			calls = append(calls, c.Delta.ToolCalls...)
			if c.FinishReason != nil {
				finish = *c.FinishReason
			}
		}
	}
	if strings.TrimSpace(content.String()) != "Checking." || finish != "tool_calls" || len(calls) != 1 {
		t.Fatalf("content %q, finish %q, calls %v", content.String(), finish, calls)
	}
	fn, _ := calls[0]["function"].(map[string]any)
	if calls[0]["index"] != float64(0) || fn["name"] != "get_time" || fn["arguments"] != `{"zone":"UTC"}` || !strings.HasPrefix(calls[0]["id"].(string), "call_") {
		t.Errorf("tool call delta %v", calls[0])
	}
}

func ptr[T any](v T) *T { return &v }
