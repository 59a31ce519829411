package httpserver

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestResponsesRequest: a Responses request becomes the chat it stands
// for: instructions a system message, input items messages, function
// calls an assistant turn, their outputs tool messages.
func TestResponsesRequest(t *testing.T) {
	ts, fake := serve(t, Config{})
	resp := do(t, ts, "POST", "/v1/responses", `{"instructions":"Be brief.","max_output_tokens":9,"temperature":0.5,"input":[
		{"role":"user","content":[{"type":"input_text","text":"Hi"}]},
		{"type":"function_call","call_id":"c1","name":"f","arguments":"{}"},
		{"type":"function_call_output","call_id":"c1","output":"ok"}],
		"tools":[{"type":"function","name":"f","parameters":{"type":"object"}}],"tool_choice":{"type":"function","name":"f"},
		"text":{"format":{"type":"json_schema","name":"x","schema":{"type":"object"}}},"store":false}`)
	// (Inference refuses tools with a text format; the fake takes both, so
	// that one request shows every field's way through.)
	if resp.status != http.StatusOK {
		t.Fatalf("status %d: %s", resp.status, resp.body)
	}
	req := fake.lastRequest(t)
	var got []string
	for _, m := range req.Messages {
		s := m.Role + ":" + m.Content
		for _, c := range m.ToolCalls {
			s += fmt.Sprintf("[%s %s %s]", c.ID, c.Name, c.Arguments)
		}
		if m.ToolCallID != "" {
			s += "<" + m.ToolCallID
		}
		got = append(got, s)
	}
	if want := "[system:Be brief. user:Hi assistant:[c1 f {}] tool:ok<c1]"; fmt.Sprint(got) != want {
		t.Errorf("messages %v, want %s", got, want)
	}
	if req.MaxTokens != 9 || req.Sampling.Temperature != 0.5 || len(req.Tools.Tools) != 1 || req.Tools.Choice.Name != "f" ||
		req.Constraint == nil || req.Constraint.Field != "text.format.schema" {
		t.Errorf("request %+v", req)
	}
	for _, tt := range []struct{ body, param string }{
		{`{"input":"Hi","previous_response_id":"resp_1"}`, "previous_response_id"},
		{`{"input":"Hi","store":true}`, "store"},
		{`{"input":"Hi","background":true}`, "background"},
		{`{}`, "input"},
		{`{"input":[]}`, "input"},
		{`{"input":[{"type":"image","role":"user"}]}`, "input[0].type"},
		{`{"input":"Hi","tools":[{"type":"web_search"}]}`, "tools[0].type"},
		{`{"input":"Hi","text":{"format":{"type":"yaml"}}}`, "text.format.type"},
		{`{"input":"Hi","max_output_tokens":0}`, "max_output_tokens"},
	} {
		checkError(t, do(t, ts, "POST", "/v1/responses", tt.body), http.StatusBadRequest, tt.param, "")
	}
}

// TestResponsesReply: the reply object, whole and as the Responses event
// sequence, numbered, with the text in deltas adding up to the output.
func TestResponsesReply(t *testing.T) {
	ts, _ := serve(t, Config{})
	resp := do(t, ts, "POST", "/v1/responses", `{"input":"Hi"}`)
	var whole struct {
		ID     string `json:"id"`
		Object string `json:"object"`
		Status string `json:"status"`
		Output []struct {
			Type    string `json:"type"`
			Role    string `json:"role"`
			Content []struct {
				Type string `json:"type"`
				Text string `json:"text"`
			} `json:"content"`
		} `json:"output"`
		Usage struct {
			InputTokens  int `json:"input_tokens"`
			OutputTokens int `json:"output_tokens"`
			TotalTokens  int `json:"total_tokens"`
		} `json:"usage"`
	}
	if err := json.Unmarshal(resp.body, &whole); err != nil || resp.status != 200 {
		t.Fatalf("status %d %s: %v", resp.status, resp.body, err)
	}
	if whole.Object != "response" || whole.Status != "completed" || len(whole.Output) != 1 || whole.Output[0].Role != "assistant" ||
		whole.Output[0].Content[0].Type != "output_text" || whole.Output[0].Content[0].Text != wantText ||
		whole.Usage.InputTokens != 7 || whole.Usage.OutputTokens != 3 || whole.Usage.TotalTokens != 10 {
		t.Errorf("reply %s", resp.body)
	}

	resp = do(t, ts, "POST", "/v1/responses", `{"input":"Hi","stream":true}`)
	blocks := strings.Split(strings.TrimSpace(string(resp.body)), "\n\n")
	var kinds []string
	var text strings.Builder
	for i, b := range blocks {
		lines := strings.SplitN(b, "\n", 2)
		kind, ok1 := strings.CutPrefix(lines[0], "event: ")
		data, ok2 := strings.CutPrefix(lines[len(lines)-1], "data: ")
		var ev struct {
			Type  string `json:"type"`
			Seq   int    `json:"sequence_number"`
			Delta string `json:"delta"`
		}
		if !ok1 || !ok2 || json.Unmarshal([]byte(data), &ev) != nil || ev.Type != kind || ev.Seq != i {
			t.Fatalf("event %d: %q", i, b)
		}
		kinds = append(kinds, kind)
		if kind == "response.output_text.delta" {
			text.WriteString(ev.Delta)
		}
	}
	want := "response.created response.in_progress response.output_item.added response.content_part.added " +
		"response.output_text.delta response.output_text.delta response.output_text.delta response.output_text.done " +
		"response.content_part.done response.output_item.done response.completed"
	if strings.Join(kinds, " ") != want || text.String() != wantText {
		t.Errorf("events %v (text %q), want %s", kinds, text.String(), want)
	}
}
