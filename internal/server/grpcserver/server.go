// Package grpcserver owns Lumen's gRPC transport: one grpc.Server serving
// the lumen.v1.LumenService API, grpc.health.v1 and server reflection.
//
// It only decodes and validates requests, checks API keys and maps errors
// to status codes (in toStatus); the work is done by an inference.API.
// Transport security is not its concern: the listener main passes in, or a
// credentials option in Config.ServerOptions, decides it.
package grpcserver

import (
	"context"
	"errors"
	"log/slog"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/stats"

	lumenv1 "github.com/lumenllm/lumen/gen/lumen/v1"
	"github.com/lumenllm/lumen/internal/auth"
	"github.com/lumenllm/lumen/internal/inference"
)

// Config builds a Server.
type Config struct {
	// API does the work of the LumenService methods (required).
	API inference.API
	// Ready, when set, is asked on every health Check and List: the server
	// reports SERVING only while Ready() is true and SetServing(true) was
	// the last call. Health Watch streams follow SetServing alone.
	Ready inference.Readiness
	// Keys are the accepted API keys of the LumenService methods; the zero
	// value accepts every call. Health and reflection need no key.
	Keys auth.Keys
	// ServerOptions are passed to grpc.NewServer (a stats handler,
	// transport credentials, message size limits). Interceptors given here
	// run before the server's own, so they see unauthenticated calls too.
	ServerOptions []grpc.ServerOption
	// StatsHandler, when set, sees every call (otelgrpc's server handler);
	// calls to methods the server does not serve reach it named
	// UnknownMethod, so clients cannot mint span names or metric series.
	StatsHandler stats.Handler
	// Logger receives calls that fail with an internal error (default:
	// none).
	Logger *slog.Logger
}

// Server is the gRPC server. Its methods are safe for concurrent use.
type Server struct {
	grpc   *grpc.Server
	health *healthService
	keys   auth.Keys
	log    *slog.Logger
	codec  *decodeCodec
}

// New builds a Server whose health status is NOT_SERVING until
// SetServing(true). It panics without cfg.API.
func New(cfg Config) *Server {
	if cfg.API == nil {
		panic("grpcserver: Config.API is nil")
	}
	s := &Server{
		health: &healthService{Server: health.NewServer(), ready: cfg.Ready},
		keys:   cfg.Keys,
		log:    cfg.Logger,
		codec:  newDecodeCodec(),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	opts := append([]grpc.ServerOption(nil), cfg.ServerOptions...)
	var methods *knownMethods
	if cfg.StatsHandler != nil {
		methods = &knownMethods{next: cfg.StatsHandler}
		opts = append(opts, grpc.StatsHandler(methods))
	}
	opts = append(opts,
		grpc.ForceServerCodecV2(s.codec),
		grpc.ChainUnaryInterceptor(s.unaryInterceptor),
		grpc.ChainStreamInterceptor(s.streamInterceptor),
	)
	s.grpc = grpc.NewServer(opts...)
	lumenv1.RegisterLumenServiceServer(s.grpc, &service{api: cfg.API})
	healthpb.RegisterHealthServer(s.grpc, s.health)
	reflection.Register(s.grpc)
	if methods != nil {
		methods.known = map[string]bool{}
		for name, info := range s.grpc.GetServiceInfo() {
			for _, m := range info.Methods {
				methods.known["/"+name+"/"+m.Name] = true
			}
		}
	}
	s.SetServing(false)
	return s
}

// SetServing sets the health status of the server ("") and of
// lumen.v1.LumenService: main calls it with true once the model is loaded
// and with false when draining starts. After a stop it has no effect.
func (s *Server) SetServing(serving bool) {
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if serving {
		st = healthpb.HealthCheckResponse_SERVING
	}
	s.health.SetServingStatus("", st)
	s.health.SetServingStatus(lumenv1.LumenService_ServiceDesc.ServiceName, st)
}

// Serve accepts connections on lis until Stop or Shutdown,
// after which it returns nil (also when the stop came first).
func (s *Server) Serve(lis net.Listener) error {
	s.log.Info("grpc server listening", "addr", lis.Addr().String())
	if err := s.grpc.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return err
	}
	return nil
}

// Stop reports NOT_SERVING, closes every connection and cancels running
// calls (their contexts, and so their requests in the scheduler).
func (s *Server) Stop() {
	s.health.Shutdown()
	s.grpc.Stop()
}

// Shutdown stops gracefully, but when ctx ends first it cancels the calls
// still running and returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.health.Shutdown()
	done := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.grpc.Stop()
		<-done
		return ctx.Err()
	}
}

// healthService is grpc's health server with Check and List also gated
// by Config.Ready.
type healthService struct {
	*health.Server
	ready inference.Readiness
}

func (h *healthService) gate(st healthpb.HealthCheckResponse_ServingStatus) healthpb.HealthCheckResponse_ServingStatus {
	if st == healthpb.HealthCheckResponse_SERVING && h.ready != nil && !h.ready.Ready() {
		return healthpb.HealthCheckResponse_NOT_SERVING
	}
	return st
}

func (h *healthService) Check(ctx context.Context, req *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	resp, err := h.Server.Check(ctx, req)
	if err != nil {
		return nil, err
	}
	resp.Status = h.gate(resp.Status)
	return resp, nil
}

func (h *healthService) List(ctx context.Context, req *healthpb.HealthListRequest) (*healthpb.HealthListResponse, error) {
	resp, err := h.Server.List(ctx, req)
	if err != nil {
		return nil, err
	}
	for _, st := range resp.Statuses {
		st.Status = h.gate(st.Status)
	}
	return resp, nil
}
