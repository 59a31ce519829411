package grpcmsg

import (
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	lumenv1 "github.com/lumenllm/lumen/gen/lumen/v1"
)

// The two requests mirror each other: every field of one has a field of
// the other with the same name, number, kind and cardinality.
func TestRequestsMirror(t *testing.T) {
	u := (&lumenv1.GenerateRequest{}).ProtoReflect().Descriptor().Fields()
	s := (&lumenv1.GenerateStreamRequest{}).ProtoReflect().Descriptor().Fields()
	if u.Len() != s.Len() {
		t.Fatalf("GenerateRequest has %d fields, GenerateStreamRequest %d", u.Len(), s.Len())
	}
	for i := range u.Len() {
		a := u.Get(i)
		b := s.ByNumber(a.Number())
		if b == nil || !sameField(a, b) {
			t.Errorf("field %d: GenerateRequest has %v, GenerateStreamRequest %v", a.Number(), a, b)
		}
	}
}

// sameField: one wire encoding for both (a map's entry messages are each
// message's own, so their keys and values are compared instead).
func sameField(a, b protoreflect.FieldDescriptor) bool {
	if a.Name() != b.Name() || a.Kind() != b.Kind() || a.Cardinality() != b.Cardinality() ||
		a.HasPresence() != b.HasPresence() || a.IsMap() != b.IsMap() || fullName(a.Enum()) != fullName(b.Enum()) {
		return false
	}
	if a.IsMap() {
		return sameField(a.MapKey(), b.MapKey()) && sameField(a.MapValue(), b.MapValue())
	}
	return fullName(a.Message()) == fullName(b.Message())
}

func fullName[D interface{ FullName() protoreflect.FullName }](d D) protoreflect.FullName {
	var zero D
	if any(d) == any(zero) {
		return ""
	}
	return d.FullName()
}

// Every field survives the round trip, both ways.
func TestConvert(t *testing.T) {
	full := &lumenv1.GenerateRequest{
		Model: "m", Prompt: "p", Messages: []*lumenv1.ChatMessage{{Role: "user", Content: "c"}}, MaxTokens: 3,
		Temperature: proto.Float32(0.1), TopK: proto.Int32(2), TopP: proto.Float32(0.3), MinP: proto.Float32(0.4),
		RepetitionPenalty: proto.Float32(0.5), FrequencyPenalty: proto.Float32(0.6), PresencePenalty: proto.Float32(0.7),
		Seed: proto.Uint32(8), Stop: []string{"s"},
		Grammar: "root ::= \"a\"", JsonSchema: "{}", JsonObject: true, Tools: []*lumenv1.Tool{{Name: "f"}},
		ToolChoice: &lumenv1.ToolChoice{Mode: lumenv1.ToolChoice_MODE_REQUIRED}, ParallelToolCalls: proto.Bool(false),
		LogitBias: map[int32]float32{1: 1}, IgnoreEos: true, Logprobs: true, TopLogprobs: 2, MinTokens: 1,
	}
	set := 0
	full.ProtoReflect().Range(func(protoreflect.FieldDescriptor, protoreflect.Value) bool { set++; return true })
	if n := full.ProtoReflect().Descriptor().Fields().Len(); set != n {
		t.Fatalf("the test sets %d fields of %d", set, n)
	}
	s, err := Stream(full)
	if err != nil {
		t.Fatal(err)
	}
	if s.GetSeed() != 8 || s.GetToolChoice().GetMode() != lumenv1.ToolChoice_MODE_REQUIRED || s.GetLogitBias()[1] != 1 {
		t.Errorf("Stream: %v", s)
	}
	back, err := Unary(s)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(full, back) {
		t.Errorf("round trip: %v, want %v", back, full)
	}
	if _, err := Stream(&lumenv1.GenerateRequest{Prompt: "\xff"}); err == nil {
		t.Error("a prompt that is not UTF-8 converted")
	}
}
