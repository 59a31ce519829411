package main

import (
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	lumenv1 "github.com/lumenllm/lumen/gen/lumen/v1"
	"github.com/lumenllm/lumen/internal/grpcclient"
)

// Over gRPC: a schema-constrained reply validates, a required tool call
// comes back as tool_calls with FINISH_REASON_TOOL_CALLS, and a bad
// grammar is INVALID_ARGUMENT with llama.cpp's reason.
func TestStructuredOutputOverGRPC(t *testing.T) {
	model := synthWithTemplate(t, toolTemplates["hermes"])
	_, grpcAddr := startServe(t, "--model", model, "--ctx-size", fmt.Sprint(structuredCtx))
	c, err := grpcclient.New(grpcclient.Config{Addr: grpcAddr})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	schema := compileSchema(t, boundedSchemas[0].schema)
	for seed := range uint32(5) {
		resp, err := c.Generate(t.Context(), &lumenv1.GenerateRequest{
			Prompt: "JSON:", MaxTokens: 300, Temperature: proto.Float32(1), Seed: proto.Uint32(seed + 1), JsonSchema: boundedSchemas[0].schema,
		})
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetFinishReason() != lumenv1.FinishReason_FINISH_REASON_STOP {
			t.Fatalf("finish %v", resp.GetFinishReason())
		}
		if err := validates(schema, resp.GetText()); err != nil {
			t.Errorf("seed %d: %q: %v", seed, resp.GetText(), err)
		}
	}

	params := compileSchema(t, weatherParams)
	final, err := c.Stream(t.Context(), &lumenv1.GenerateStreamRequest{
		Messages:  []*lumenv1.ChatMessage{{Role: "user", Content: "Weather?"}},
		MaxTokens: 300, Temperature: proto.Float32(1), Seed: proto.Uint32(3),
		Tools:             []*lumenv1.Tool{{Name: "get_weather", ParametersJson: weatherParams}},
		ToolChoice:        &lumenv1.ToolChoice{Mode: lumenv1.ToolChoice_MODE_REQUIRED},
		ParallelToolCalls: proto.Bool(false),
	}, func(*lumenv1.GenerateStreamResponse) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	calls := final.GetToolCalls()
	if final.GetFinishReason() != lumenv1.FinishReason_FINISH_REASON_TOOL_CALLS || len(calls) != 1 || calls[0].GetName() != "get_weather" {
		t.Fatalf("final message %v", final)
	}
	if err := validates(params, calls[0].GetArguments()); err != nil {
		t.Errorf("arguments %q: %v", calls[0].GetArguments(), err)
	}

	_, err = c.Generate(t.Context(), &lumenv1.GenerateRequest{Prompt: "a", Grammar: "root ::= nowhere"})
	if st, _ := status.FromError(err); st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), "Undefined rule identifier 'nowhere'") {
		t.Errorf("bad grammar: %v, want INVALID_ARGUMENT with llama.cpp's reason", err)
	}
	_, err = c.Generate(t.Context(), &lumenv1.GenerateRequest{Prompt: "a", Grammar: `root ::= "a"`, JsonObject: true})
	if st, _ := status.FromError(err); st.Code() != codes.InvalidArgument {
		t.Errorf("two constraints: %v, want INVALID_ARGUMENT", err)
	}
}
