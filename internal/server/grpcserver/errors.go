package grpcserver

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/trace"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/lumenllm/lumen/internal/auth"
	"github.com/lumenllm/lumen/internal/inference"
	"github.com/lumenllm/lumen/internal/reqerr"
	"github.com/lumenllm/lumen/internal/telemetry/semconv"
)

// toStatus is the one place that turns an error into the status a client
// sees. Errors that already are statuses (from grpc itself, such as a
// failed Send) pass through.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	var invalid *reqerr.InvalidError
	switch {
	case errors.As(err, &invalid):
		st := status.New(codes.InvalidArgument, invalid.Error())
		if detailed, derr := st.WithDetails(&errdetails.BadRequest{
			FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: invalid.Field, Description: invalid.Reason}},
		}); derr == nil {
			st = detailed
		}
		return st.Err()
	case errors.Is(err, reqerr.ErrInvalid):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, auth.ErrUnauthenticated):
		return status.Error(codes.Unauthenticated, err.Error())
	case errors.Is(err, inference.ErrUnknownModel):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, reqerr.ErrQueueFull):
		return status.Error(codes.ResourceExhausted, err.Error())
	case errors.Is(err, reqerr.ErrDraining), errors.Is(err, reqerr.ErrShutdown), errors.Is(err, inference.ErrLoading):
		return status.Error(codes.Unavailable, err.Error())
	case errors.Is(err, inference.ErrRenderFailed):
		return status.Error(codes.Internal, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	default: // reqerr.ErrEngine and anything unforeseen
		return status.Error(codes.Internal, err.Error())
	}
}

// failed is toStatus for a generation call, which also names the
// failure's kind (error.type, as on the request span) on the call's
// span: the status code alone does not tell a shutdown from an engine
// failure.
func failed(ctx context.Context, err error) error {
	trace.SpanFromContext(ctx).SetAttributes(semconv.AttrErrorType.String(inference.ErrorType(err)))
	return toStatus(err)
}
