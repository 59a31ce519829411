package traceanalyze

import (
	"bytes"
	"testing"
)

// FuzzDecode feeds arbitrary bytes to the decoders (OTLP and Jaeger JSON)
// and every report writer: errors are fine, panics are not.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(otlpOneLine + "\n" + otlpSecondLine))
	f.Add([]byte(jaegerDoc))
	f.Add([]byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"01","spanId":"02"}]}]}]}`))
	f.Add([]byte(`{"data":[{"spans":[{"traceID":"1","spanID":"1","references":[{"refType":"CHILD_OF","traceID":"1","spanID":"1"}],"startTime":1,"duration":1}]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		spans, err := Decode(b, FormatAuto)
		if err != nil {
			return
		}
		r, err := Analyze(spans, Options{Prices: &Prices{Currency: "USD", Default: Price{1, 1}}})
		if err != nil {
			t.Fatalf("decoded spans fail analysis: %v", err)
		}
		var buf bytes.Buffer
		if err := r.WriteText(&buf); err != nil {
			t.Fatal(err)
		}
		if err := r.WriteJSON(&buf); err != nil {
			t.Fatal(err)
		}
		if err := r.WriteHTML(&buf); err != nil {
			t.Fatal(err)
		}
	})
}
