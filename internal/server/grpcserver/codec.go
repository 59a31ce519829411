package grpcserver

import (
	"context"
	"fmt"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
)

// decodeCodec is the proto codec, except that a message that does not
// decode is reported by the server's interceptors as INVALID_ARGUMENT:
// grpc-go turns every decode error into INTERNAL, which tells a client
// the server failed when it was the client's bytes. The codec cannot
// choose the code itself, so it records the failure against the message
// it was decoding into, and the interceptor that receives that message
// takes the record and answers.
type decodeCodec struct {
	base   encoding.CodecV2
	failed sync.Map // message pointer → decode error
}

func newDecodeCodec() *decodeCodec {
	return &decodeCodec{base: encoding.GetCodecV2("proto")}
}

func (c *decodeCodec) Name() string { return c.base.Name() }

func (c *decodeCodec) Marshal(v any) (mem.BufferSlice, error) { return c.base.Marshal(v) }

func (c *decodeCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if err := c.base.Unmarshal(data, v); err != nil {
		c.failed.Store(v, err)
	}
	return nil
}

// take returns, and forgets, the decode failure of message v.
func (c *decodeCodec) take(v any) error {
	err, ok := c.failed.LoadAndDelete(v)
	if !ok {
		return nil
	}
	return status.Error(codes.InvalidArgument, fmt.Sprintf("the request is not a valid %T message: %v", v, err))
}

// decodeCheckedStream answers a message that did not decode.
type decodeCheckedStream struct {
	grpc.ServerStream
	codec *decodeCodec
	ctx   context.Context // the stream's, with what the interceptor added
}

func (s *decodeCheckedStream) Context() context.Context { return s.ctx }

func (s *decodeCheckedStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	return s.codec.take(m)
}
