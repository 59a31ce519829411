// Package w3c holds the W3C Trace Context rules that the OpenTelemetry
// propagator leaves to its carrier; the transports apply them to the raw
// headers and metadata. It imports nothing of Lumen's.
package w3c

import "strings"

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
