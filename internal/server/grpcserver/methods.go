package grpcserver

import (
	"context"

	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/stats"

	"github.com/lumenllm/lumen/internal/telemetry/w3c"
)

// UnknownMethod is the method name a stats handler sees for a call to a
// method this server does not serve. Method names come from clients:
// passed through, each made-up name would become its own span name and
// metric series.
const UnknownMethod = "/unknown/unknown"

// knownMethods hands next the real method name only of served methods.
type knownMethods struct {
	next stats.Handler
	// known is filled once, after the services are registered and before
	// the server serves; read-only afterwards.
	known map[string]bool
}

func (k *knownMethods) TagRPC(ctx context.Context, info *stats.RPCTagInfo) context.Context {
	if !k.known[info.FullMethodName] {
		c := *info
		c.FullMethodName = UnknownMethod
		info = &c
	}
	return k.next.TagRPC(traceMetadata(ctx), info)
}

// traceMetadata applies the W3C rules the propagator leaves to the
// carrier (w3c.Headers) to the call's trace metadata, before otelgrpc's
// handler extracts it.
func traceMetadata(ctx context.Context) context.Context {
	md, ok := metadata.FromIncomingContext(ctx)
	if !ok {
		return ctx
	}
	tps, tss := md.Get(w3c.HeaderTraceparent), md.Get(w3c.HeaderTracestate)
	if !w3c.NeedsRewrite(tps, tss) {
		return ctx
	}
	md = md.Copy()
	md.Delete(w3c.HeaderTraceparent)
	md.Delete(w3c.HeaderTracestate)
	if tp, ts, ok := w3c.Headers(tps, tss); ok {
		md.Set(w3c.HeaderTraceparent, tp)
		if ts != "" {
			md.Set(w3c.HeaderTracestate, ts)
		}
	}
	return metadata.NewIncomingContext(ctx, md)
}

func (k *knownMethods) HandleRPC(ctx context.Context, s stats.RPCStats) { k.next.HandleRPC(ctx, s) }

func (k *knownMethods) TagConn(ctx context.Context, info *stats.ConnTagInfo) context.Context {
	return k.next.TagConn(ctx, info)
}

func (k *knownMethods) HandleConn(ctx context.Context, s stats.ConnStats) { k.next.HandleConn(ctx, s) }
