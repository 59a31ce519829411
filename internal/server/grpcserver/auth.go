package grpcserver

import (
	"context"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	lumenv1 "github.com/lumenllm/lumen/gen/lumen/v1"
	"github.com/lumenllm/lumen/internal/auth"
	"github.com/lumenllm/lumen/internal/inference"
)

// authorize checks the "authorization: Bearer <key>" metadata of calls to
// LumenService; other services (health, reflection) are open.
func (s *Server) authorize(ctx context.Context, fullMethod string) error {
	if !strings.HasPrefix(fullMethod, "/"+lumenv1.LumenService_ServiceDesc.ServiceName+"/") {
		return nil
	}
	key := ""
	if v := metadata.ValueFromIncomingContext(ctx, "authorization"); len(v) > 0 {
		key = auth.BearerToken(v[0])
	}
	return s.keys.Check(key)
}

// logFailure records calls that failed on the server's side.
func (s *Server) logFailure(ctx context.Context, fullMethod string, err error) {
	if status.Code(err) == codes.Internal {
		s.log.ErrorContext(ctx, "grpc call failed", "method", fullMethod, "err", err)
	}
}

func (s *Server) unaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	// Taken first, so that a refused call forgets its record too.
	decodeErr := s.codec.take(req)
	if err := s.authorize(ctx, info.FullMethod); err != nil {
		return nil, toStatus(err)
	}
	if decodeErr != nil {
		return nil, decodeErr
	}
	resp, err := handler(withLocalAddr(ctx), req)
	s.logFailure(ctx, info.FullMethod, err)
	return resp, err
}

func (s *Server) streamInterceptor(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if err := s.authorize(ss.Context(), info.FullMethod); err != nil {
		return toStatus(err)
	}
	err := handler(srv, &decodeCheckedStream{ServerStream: ss, codec: s.codec, ctx: withLocalAddr(ss.Context())})
	s.logFailure(ss.Context(), info.FullMethod, err)
	return err
}

// withLocalAddr records the listener's address of the call's connection
// for the request span (server.address, server.port).
func withLocalAddr(ctx context.Context) context.Context {
	if p, ok := peer.FromContext(ctx); ok {
		return inference.WithServerAddr(ctx, p.LocalAddr)
	}
	return ctx
}
