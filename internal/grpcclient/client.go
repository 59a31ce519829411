// Package grpcclient owns the client side of Lumen's gRPC API as the lumen
// command uses it: dialling a server with an API key, reading a generation
// stream, and describing failed calls.
package grpcclient

import (
	"context"
	"errors"
	"fmt"
	"io"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	lumenv1 "github.com/lumenllm/lumen/gen/lumen/v1"
)

// Config says how to reach a server.
type Config struct {
	// Addr is the server's host:port.
	Addr string
	// APIKey, when set, is sent with every call as "authorization: Bearer
	// <key>".
	APIKey string
	// DialOptions are added after the defaults. Without TLS credentials
	// here the connection is plaintext, and so is the API key: use it on
	// loopback or a trusted network only.
	DialOptions []grpc.DialOption
}

// Client calls a server's LumenService.
type Client struct {
	lumenv1.LumenServiceClient
	conn *grpc.ClientConn
}

// New makes a Client; it connects on the first call.
func New(cfg Config) (*Client, error) {
	if cfg.Addr == "" {
		return nil, errors.New("grpcclient: no server address")
	}
	opts := []grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}
	if cfg.APIKey != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(bearer(cfg.APIKey)))
	}
	opts = append(opts, cfg.DialOptions...)
	conn, err := grpc.NewClient(cfg.Addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("grpcclient: %w", err)
	}
	return &Client{LumenServiceClient: lumenv1.NewLumenServiceClient(conn), conn: conn}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Stream runs GenerateStream, calling each for every message as it
// arrives (the last one included), and returns the last message, which
// carries the finish reason, usage and timings. An error from each ends
// the call (cancelling the generation) and is returned.
func (c *Client) Stream(ctx context.Context, req *lumenv1.GenerateStreamRequest, each func(*lumenv1.GenerateStreamResponse) error) (*lumenv1.GenerateStreamResponse, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.GenerateStream(ctx, req)
	if err != nil {
		return nil, err
	}
	for {
		msg, err := stream.Recv()
		if err == io.EOF {
			return nil, errors.New("generation stream ended without a final message")
		}
		if err != nil {
			return nil, err
		}
		if err := each(msg); err != nil {
			return nil, err
		}
		if msg.FinishReason != lumenv1.FinishReason_FINISH_REASON_UNSPECIFIED {
			return msg, nil
		}
	}
}

// Describe rewrites a call's status error as "CODE: message" (for
// example "Unauthenticated: missing or invalid API key"); other errors
// pass through.
func Describe(err error) error {
	if err == nil {
		return nil
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	return &callError{st: st}
}

type callError struct{ st *status.Status }

func (e *callError) Error() string { return fmt.Sprintf("%s: %s", e.st.Code(), e.st.Message()) }

// GRPCStatus keeps the status visible to status.FromError and status.Code.
func (e *callError) GRPCStatus() *status.Status { return e.st }

// bearer sends an API key with every call.
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

// RequireTransportSecurity is false so the key also goes over plaintext
// connections (TLS is not supported yet).
func (bearer) RequireTransportSecurity() bool { return false }
