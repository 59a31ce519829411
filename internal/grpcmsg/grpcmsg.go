// Package grpcmsg converts between the gRPC API's messages that mirror
// each other: GenerateRequest and GenerateStreamRequest have the same
// fields under the same numbers, so the wire form of one is the other.
// Converting through it, rather than copying fields by name, cannot miss
// a field added to both; the package's test fails when the two drift
// apart. It imports only the generated API.
package grpcmsg

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	lumenv1 "github.com/lumenllm/lumen/gen/lumen/v1"
)

// Stream is r as a GenerateStreamRequest.
func Stream(r *lumenv1.GenerateRequest) (*lumenv1.GenerateStreamRequest, error) {
	return convert(r, &lumenv1.GenerateStreamRequest{})
}

// Unary is r as a GenerateRequest.
func Unary(r *lumenv1.GenerateStreamRequest) (*lumenv1.GenerateRequest, error) {
	return convert(r, &lumenv1.GenerateRequest{})
}

// convert decodes src's wire form into dst. Marshalling fails only for a
// message that could not have been decoded (a string field that is not
// UTF-8, set in Go by a caller).
func convert[T proto.Message](src proto.Message, dst T) (T, error) {
	b, err := proto.Marshal(src)
	if err == nil {
		err = proto.Unmarshal(b, dst)
	}
	if err != nil {
		return dst, fmt.Errorf("grpcmsg: %T as %T: %w", src, dst, err)
	}
	return dst, nil
}
