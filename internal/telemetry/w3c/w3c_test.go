package w3c

import (
	"context"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

func TestHeaders(t *testing.T) {
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for _, tt := range []struct {
		name        string
		parents, ts []string
		wantTS      string
		wantOK      bool
	}{
		{"one of each", []string{tp}, []string{"foo=1"}, "foo=1", true},
		{"tracestate over three headers", []string{tp}, []string{"foo=1,bar=2", "rojo=00f067aa0ba902b7", "congo=t61rcWkgMzE"}, "foo=1,bar=2,rojo=00f067aa0ba902b7,congo=t61rcWkgMzE", true},
		{"empty members skipped", []string{tp}, []string{"foo=1, ,bar=2", " ", ",baz=3,"}, "foo=1,bar=2,baz=3", true},
		{"no tracestate", []string{tp}, nil, "", true},
		{"two traceparents: a new trace", []string{tp, tp}, []string{"foo=1"}, "", false},
		{"no traceparent", nil, []string{"foo=1"}, "", false},
	} {
		gotTP, gotTS, ok := Headers(tt.parents, tt.ts)
		if ok != tt.wantOK || gotTS != tt.wantTS || (ok && gotTP != tp) {
			t.Errorf("%s: %q %q %v, want %q %v", tt.name, gotTP, gotTS, ok, tt.wantTS, tt.wantOK)
		}
	}
}

// TestRandomRoots: through the SDK, a request without a parent starts a
// trace with the random flag (and the flag reaches the next hop's
// traceparent); a continued trace keeps the caller's flags.
func TestRandomRoots(t *testing.T) {
	tp := sdktrace.NewTracerProvider()
	prop := RandomRoots(propagation.TraceContext{})
	for _, tt := range []struct {
		name, in  string
		wantFlags trace.TraceFlags
	}{
		{"no traceparent", "", trace.FlagsSampled | trace.FlagsRandom},
		{"malformed traceparent", "00-xyz-00f067aa0ba902b7-01", trace.FlagsSampled | trace.FlagsRandom},
		{"caller without the flag", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", trace.FlagsSampled},
		{"caller with it", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03", trace.FlagsSampled | trace.FlagsRandom},
	} {
		carrier := propagation.MapCarrier{}
		if tt.in != "" {
			carrier["traceparent"] = tt.in
		}
		ctx, span := tp.Tracer("t").Start(prop.Extract(context.Background(), carrier), "server")
		sc := span.SpanContext()
		span.End()
		if !sc.IsValid() || sc.TraceFlags() != tt.wantFlags {
			t.Errorf("%s: span context %v flags %v, want valid with %v", tt.name, sc, sc.TraceFlags(), tt.wantFlags)
		}
		_, child := tp.Tracer("t").Start(ctx, "child")
		if child.SpanContext().TraceFlags() != tt.wantFlags {
			t.Errorf("%s: child flags %v, want %v", tt.name, child.SpanContext().TraceFlags(), tt.wantFlags)
		}
		child.End()
		out := propagation.MapCarrier{}
		prop.Inject(ctx, out)
		if want := "-" + tt.wantFlags.String(); !strings.HasSuffix(out["traceparent"], want) {
			t.Errorf("%s: next hop's traceparent %q, want flags %s", tt.name, out["traceparent"], tt.wantFlags)
		}
	}
	// A root that a sampler drops still carries the flag onward.
	off := sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()))
	_, span := off.Tracer("t").Start(RandomRoot(context.Background()), "dropped")
	if f := span.SpanContext().TraceFlags(); f != trace.FlagsRandom {
		t.Errorf("unsampled root flags %v, want random only", f)
	}
}
