// Package w3c holds the W3C Trace Context rules that the OpenTelemetry
// propagator leaves to its carrier, which the transports apply to the raw
// headers and metadata, and the one the SDK leaves out: the Level 2
// random flag on new roots. It imports nothing of Lumen's.
package w3c

import (
	"context"
	"strings"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// W3C Trace Context header names.
const (
	HeaderTraceparent = "traceparent"
	HeaderTracestate  = "tracestate"
)

// Headers applies the Trace Context rules that the OpenTelemetry
// propagator leaves to its carrier, which hands it only a header's first
// value: several tracestate headers are one list, joined in order, whose
// empty members are skipped; more than one traceparent is invalid, so the
// request starts a new trace (ok is false: drop the traceparent, and the
// tracestate with it). Transports call it on the raw headers (HTTP) or
// metadata (gRPC) before the propagator extracts.
func Headers(traceparents, tracestates []string) (traceparent, tracestate string, ok bool) {
	switch len(traceparents) {
	case 0:
		return "", "", false
	case 1:
	default:
		return "", "", false
	}
	var members []string
	for _, v := range tracestates {
		for _, m := range strings.Split(v, ",") {
			if m = strings.TrimSpace(m); m != "" {
				members = append(members, m)
			}
		}
	}
	return traceparents[0], strings.Join(members, ","), true
}

// NeedsRewrite reports whether Headers would change what the propagator
// reads: more than one value of either header, or a tracestate list
// (whose members may need trimming or dropping).
func NeedsRewrite(traceparents, tracestates []string) bool {
	return len(traceparents) > 1 || len(tracestates) > 1 || (len(tracestates) == 1 && strings.Contains(tracestates[0], ","))
}

// RandomRoots wraps p so that a request arriving without a trace to
// continue starts one marked with the Level 2 random flag (its trace id is
// random: the SDK's generator draws all 16 bytes). A continued trace
// keeps the caller's flags as sent.
//
// The SDK sets no flag but sampled on a new root; it does copy the flags
// of the context's span context, valid or not. So Extract leaves, where
// it found no valid parent, a span context holding the random flag alone:
// no trace or span id, so samplers still see a root.
func RandomRoots(p propagation.TextMapPropagator) propagation.TextMapPropagator {
	return randomRoots{p}
}

type randomRoots struct{ propagation.TextMapPropagator }

func (r randomRoots) Extract(ctx context.Context, carrier propagation.TextMapCarrier) context.Context {
	return RandomRoot(r.TextMapPropagator.Extract(ctx, carrier))
}

// RandomRoot returns ctx unchanged when it carries a valid span context;
// otherwise a ctx whose new root spans get the random flag (see
// RandomRoots), for spans started without an incoming request, such as
// an engine step's.
func RandomRoot(ctx context.Context) context.Context {
	if trace.SpanContextFromContext(ctx).IsValid() {
		return ctx
	}
	return trace.ContextWithSpanContext(ctx, trace.SpanContext{}.WithTraceFlags(trace.FlagsRandom))
}
