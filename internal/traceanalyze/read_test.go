package traceanalyze

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// One OTLP/JSON export request as the Collector's file exporter writes
// it: hex ids, int64 values (times, intValue) as strings.
const otlpOneLine = `{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"lumen"}}]},` +
	`"scopeSpans":[{"scope":{"name":"github.com/lumenllm/lumen"},"spans":[` +
	`{"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","spanId":"00f067aa0ba902b7","parentSpanId":"1111111111111111","name":"chat tiny",` +
	`"kind":"SPAN_KIND_INTERNAL","startTimeUnixNano":"1735787045000000000","endTimeUnixNano":"1735787045002500000",` +
	`"attributes":[{"key":"gen_ai.operation.name","value":{"stringValue":"chat"}},` +
	`{"key":"gen_ai.usage.input_tokens","value":{"intValue":"12"}},` +
	`{"key":"lumen.queue_ms","value":{"doubleValue":0.25}},` +
	`{"key":"gen_ai.response.finish_reasons","value":{"arrayValue":{"values":[{"stringValue":"stop"}]}}},` +
	`{"key":"lumen.flag","value":{"boolValue":true}}],` +
	`"status":{"code":"STATUS_CODE_ERROR","message":"engine failure"}}]}]}]}`

const otlpSecondLine = `{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"lumen"}}]},` +
	`"scopeSpans":[{"spans":[{"traceId":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","spanId":"bbbbbbbbbbbbbbbb","name":"batch",` +
	`"kind":2,"startTimeUnixNano":1735787045001000000,"endTimeUnixNano":"1735787045001200000",` +
	`"links":[{"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","spanId":"00f067aa0ba902b7",` +
	`"attributes":[{"key":"lumen.slot","value":{"intValue":"3"}}]}]}]}]}]}`

func wantFirstSpan() Span {
	start := time.Unix(0, 1735787045000000000).UTC()
	return Span{
		TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", SpanID: "00f067aa0ba902b7", ParentID: "1111111111111111",
		Name: "chat tiny", Service: "lumen", Kind: "internal", Start: start, End: start.Add(2500 * time.Microsecond),
		Attrs: map[string]any{
			"gen_ai.operation.name": "chat", "gen_ai.usage.input_tokens": int64(12), "lumen.queue_ms": 0.25,
			"gen_ai.response.finish_reasons": []any{"stop"}, "lumen.flag": true,
		},
		Error: true,
	}
}

func TestDecodeOTLP(t *testing.T) {
	for _, format := range []Format{FormatAuto, FormatOTLP} {
		spans, err := Decode([]byte(otlpOneLine+"\n"+otlpSecondLine+"\n"), format)
		if err != nil {
			t.Fatal(err)
		}
		if len(spans) != 2 {
			t.Fatalf("%d spans, want 2", len(spans))
		}
		if !reflect.DeepEqual(spans[0], wantFirstSpan()) {
			t.Errorf("span 0 =\n%+v\nwant\n%+v", spans[0], wantFirstSpan())
		}
		b := spans[1]
		wantLink := Link{TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", SpanID: "00f067aa0ba902b7", Attrs: map[string]any{"lumen.slot": int64(3)}}
		if b.Kind != "server" || b.ParentID != "" || b.Duration() != 200*time.Microsecond || len(b.Links) != 1 || !reflect.DeepEqual(b.Links[0], wantLink) {
			t.Errorf("span 1 = %+v", b)
		}
	}
}

func TestDecodeOTLPPrettyPrintedAndRepeated(t *testing.T) {
	pretty := strings.ReplaceAll(otlpOneLine, ",", ",\n  ")
	spans, err := Decode([]byte(pretty+"\n"+otlpOneLine), FormatAuto)
	if err != nil {
		t.Fatal(err)
	}
	if len(spans) != 1 || !reflect.DeepEqual(spans[0], wantFirstSpan()) {
		t.Errorf("spans = %+v, want the one span once", spans)
	}
}

func TestMarshalOTLPJSONRoundTrip(t *testing.T) {
	req := &tracepb.TracesData{ResourceSpans: []*tracepb.ResourceSpans{{
		Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{{Key: "service.name", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: "lumen"}}}}},
		ScopeSpans: []*tracepb.ScopeSpans{{Spans: []*tracepb.Span{{
			TraceId: []byte{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36},
			SpanId:  []byte{0, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}, Name: "decode",
			StartTimeUnixNano: 1735787045000000001, EndTimeUnixNano: 1735787045000000002,
			Attributes: []*commonpb.KeyValue{{Key: "lumen.decode.steps", Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: 1 << 60}}}},
		}}}},
	}}}
	b, err := MarshalOTLPJSON(req)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"traceId":"4bf92f3577b34da6a3ce929d0e0e4736"`, `"spanId":"00f067aa0ba902b7"`, `"startTimeUnixNano":"1735787045000000001"`, `"intValue":"1152921504606846976"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("%s lacks %s", b, want)
		}
	}
	if strings.Contains(string(b), "\n") {
		t.Errorf("not one line: %s", b)
	}
	got, err := Decode(b, FormatOTLP)
	if err != nil {
		t.Fatal(err)
	}
	want, err := SpansFromOTLP(req)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip: %+v, want %+v", got, want)
	}
	if n, _ := got[0].Int("lumen.decode.steps"); n != 1<<60 {
		t.Errorf("int64 attribute lost precision: %d", n)
	}
}

const jaegerDoc = `{"data":[{"traceID":"a3ce929d0e0e4736","spans":[
 {"traceID":"a3ce929d0e0e4736","spanID":"f067aa0ba902b7","operationName":"prefill",
  "references":[{"refType":"CHILD_OF","traceID":"a3ce929d0e0e4736","spanID":"1111111111111111"}],
  "startTime":1735787045000000,"duration":1500,
  "tags":[{"key":"span.kind","type":"string","value":"internal"},{"key":"otel.scope.name","type":"string","value":"x"},
   {"key":"gen_ai.usage.input_tokens","type":"int64","value":12},{"key":"lumen.prefill.chunks","type":"int64","value":"2"},
   {"key":"lumen.decode.mean_batch_size","type":"float64","value":2.5},{"key":"lumen.ok","type":"bool","value":true},
   {"key":"otel.status_code","type":"string","value":"ERROR"}],
  "processID":"p1"},
 {"traceID":"a3ce929d0e0e4736","spanID":"2222222222222222","operationName":"batch",
  "references":[{"refType":"FOLLOWS_FROM","traceID":"4bf92f3577b34da6a3ce929d0e0e4736","spanID":"3333333333333333"},
   {"refType":"CHILD_OF","traceID":"ffffffffffffffffffffffffffffffff","spanID":"4444444444444444"}],
  "startTime":1735787045000100,"duration":0,"tags":[],"processID":"p9","process":{"serviceName":"embedded"}}],
 "processes":{"p1":{"serviceName":"lumen","tags":[]}}}],"total":0,"limit":0,"offset":0,"errors":null}`

func TestDecodeJaeger(t *testing.T) {
	spans, err := Decode([]byte(jaegerDoc), FormatAuto)
	if err != nil {
		t.Fatal(err)
	}
	start := time.UnixMicro(1735787045000000).UTC()
	want := []Span{{
		TraceID: "0000000000000000a3ce929d0e0e4736", SpanID: "00f067aa0ba902b7", ParentID: "1111111111111111",
		Name: "prefill", Service: "lumen", Kind: "internal", Start: start, End: start.Add(1500 * time.Microsecond),
		Attrs: map[string]any{"gen_ai.usage.input_tokens": int64(12), "lumen.prefill.chunks": int64(2),
			"lumen.decode.mean_batch_size": 2.5, "lumen.ok": true},
		Error: true,
	}, {
		TraceID: "0000000000000000a3ce929d0e0e4736", SpanID: "2222222222222222", Name: "batch", Service: "embedded",
		Start: start.Add(100 * time.Microsecond), End: start.Add(100 * time.Microsecond),
		Links: []Link{{TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", SpanID: "3333333333333333"},
			{TraceID: "ffffffffffffffffffffffffffffffff", SpanID: "4444444444444444"}},
	}}
	if !reflect.DeepEqual(spans, want) {
		t.Errorf("spans =\n%+v\nwant\n%+v", spans, want)
	}
}

func TestDecodeErrors(t *testing.T) {
	otlpSpan := func(fields string) string {
		return `{"resourceSpans":[{"scopeSpans":[{"spans":[{` + fields + `}]}]}]}`
	}
	const ids = `"traceId":"4bf92f3577b34da6a3ce929d0e0e4736","spanId":"00f067aa0ba902b7",`
	const times = `"startTimeUnixNano":"1","endTimeUnixNano":"2"`
	jaegerSpan := func(fields string) string {
		return `{"data":[{"spans":[{"traceID":"1","spanID":"2","startTime":1,"duration":1,` + fields + `}]}]}`
	}
	tests := []struct {
		name   string
		in     string
		format Format
		want   string // in the error
	}{
		{"empty", "", FormatAuto, "no spans"},
		{"only whitespace", " \n\n", FormatAuto, "no spans"},
		{"truncated", `{"resourceSpans":[`, FormatAuto, "object 1 (line 1): malformed JSON"},
		{"second object broken, on line 3", otlpOneLine + "\n\n{]", FormatAuto, "object 2 (line 3): malformed JSON"},
		{"not an object", `[1,2]`, FormatAuto, "not a JSON object"},
		{"unknown shape", `{"spans":[]}`, FormatAuto, "neither OTLP JSON"},
		{"no spans in OTLP", `{"resourceSpans":[]}`, FormatAuto, "no spans"},
		{"trace id not hex", otlpSpan(`"traceId":"zz","spanId":"00f067aa0ba902b7",` + times), FormatAuto, `traceId: id "zz" is not hex`},
		{"trace id too short", otlpSpan(`"traceId":"abcdef","spanId":"00f067aa0ba902b7",` + times), FormatAuto, "trace id has 3 bytes, want 16"},
		{"missing span id", otlpSpan(`"traceId":"4bf92f3577b34da6a3ce929d0e0e4736",` + times), FormatAuto, "span id has 0 bytes"},
		{"zero trace id", otlpSpan(`"traceId":"00000000000000000000000000000000","spanId":"00f067aa0ba902b7",` + times), FormatAuto, "trace id is all zeros"},
		{"time not a number", otlpSpan(ids + `"startTimeUnixNano":"soon","endTimeUnixNano":"2"`), FormatAuto, "otlp:"},
		{"no start time", otlpSpan(ids + `"endTimeUnixNano":"2"`), FormatAuto, "start time: 0 ns since 1970 is out of range"},
		{"time past int64", otlpSpan(ids + `"startTimeUnixNano":"18446744073709551615","endTimeUnixNano":"2"`), FormatAuto, "out of range"},
		{"OTLP read as Jaeger", otlpOneLine, FormatJaeger, "no spans"},
		{"Jaeger read as OTLP", jaegerDoc, FormatOTLP, "no spans"},
		{"Jaeger errors", `{"data":null,"errors":[{"code":500,"msg":"storage down"}]}`, FormatAuto, "jaeger reported: 500 storage down"},
		{"Jaeger bad trace id", `{"data":[{"spans":[{"traceID":"xyz","spanID":"2","startTime":1,"duration":1}]}]}`, FormatAuto, `trace id "00000000000000000000000000000xyz": not hex`},
		{"Jaeger trace id too long", `{"data":[{"spans":[{"traceID":"1234567890123456789012345678901234","spanID":"2","startTime":1,"duration":1}]}]}`, FormatAuto, "want 1 to 32 hex digits"},
		{"Jaeger negative duration", `{"data":[{"spans":[{"traceID":"1","spanID":"2","startTime":1,"duration":-5}]}]}`, FormatAuto, "out of range"},
		{"Jaeger time as string", `{"data":[{"spans":[{"traceID":"1","spanID":"2","startTime":"1","duration":1}]}]}`, FormatAuto, "cannot unmarshal"},
		{"Jaeger bad reference type", jaegerSpan(`"references":[{"refType":"SIBLING","traceID":"1","spanID":"3"}]`), FormatAuto, `reference type "SIBLING"`},
		{"Jaeger bad tag type", jaegerSpan(`"tags":[{"key":"k","type":"int128","value":1}]`), FormatAuto, `unknown type "int128"`},
		{"Jaeger int tag not a number", jaegerSpan(`"tags":[{"key":"k","type":"int64","value":"many"}]`), FormatAuto, "not a valid int64"},
		{"Jaeger object tag", jaegerSpan(`"tags":[{"key":"k","type":"string","value":{"a":1}}]`), FormatAuto, "not a valid string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode([]byte(tt.in), tt.format)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one containing %q", err, tt.want)
			}
		})
	}
	if _, err := Decode(nil, FormatAuto); !errors.Is(err, ErrNoSpans) {
		t.Errorf("empty input: %v, want ErrNoSpans", err)
	}
}

func TestParseFormat(t *testing.T) {
	for _, ok := range []string{"auto", "otlp", "jaeger"} {
		if f, err := ParseFormat(ok); err != nil || string(f) != ok {
			t.Errorf("ParseFormat(%q) = %q, %v", ok, f, err)
		}
	}
	if _, err := ParseFormat("zipkin"); err == nil {
		t.Error("zipkin accepted")
	}
}
