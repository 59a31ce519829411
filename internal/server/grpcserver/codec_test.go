package grpcserver

import (
	"context"
	"errors"
	"io"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"

	lumenv1 "github.com/lumenllm/lumen/gen/lumen/v1"
	"github.com/lumenllm/lumen/internal/inference"
)

// rawCodec sends []byte as it is, so a test can put any bytes on the wire.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(*v.(*[]byte))}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*v.(*[]byte) = data.Materialize()
	return nil
}

// Bytes that are not the request message are the client's error: the
// server answers INVALID_ARGUMENT (grpc-go's own answer is INTERNAL), on
// unary and streaming methods alike, and a well-formed call that follows
// is served.
func TestMalformedMessageIsInvalidArgument(t *testing.T) {
	h := start(t, Config{API: &fakeAPI{tokens: []int32{1, 2}, models: []inference.Model{{ID: "m"}}}})
	// Field 1 (a string) with a length running past the end; then a
	// field number 0, which no message may have.
	for _, garbage := range [][]byte{{0x0a, 0x7f, 'x'}, {0x00, 0x01}, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}} {
		ctx := context.Background()
		var out []byte
		err := h.conn.Invoke(ctx, "/lumen.v1.LumenService/Tokenize", &garbage, &out, grpc.ForceCodecV2(rawCodec{}))
		if got := status.Code(err); got != codes.InvalidArgument {
			t.Errorf("Tokenize(%x): %v, want InvalidArgument", garbage, err)
		}
		desc := &grpc.StreamDesc{StreamName: "GenerateStream", ServerStreams: true}
		cs, err := h.conn.NewStream(ctx, desc, "/lumen.v1.LumenService/GenerateStream", grpc.ForceCodecV2(rawCodec{}))
		if err != nil {
			t.Fatal(err)
		}
		if err := cs.SendMsg(&garbage); err != nil {
			t.Fatal(err)
		}
		if err := cs.CloseSend(); err != nil {
			t.Fatal(err)
		}
		err = cs.RecvMsg(&out)
		if errors.Is(err, io.EOF) || status.Code(err) != codes.InvalidArgument {
			t.Errorf("GenerateStream(%x): %v, want InvalidArgument", garbage, err)
		}
	}
	resp, err := h.client.Tokenize(context.Background(), &lumenv1.TokenizeRequest{Text: "hi"})
	if err != nil || len(resp.GetTokens()) != 2 {
		t.Fatalf("Tokenize after garbage: %v, %v", resp, err)
	}
	n := 0
	h.srv.codec.failed.Range(func(any, any) bool { n++; return true })
	if n != 0 {
		t.Errorf("%d decode failures still recorded, want none", n)
	}
}
