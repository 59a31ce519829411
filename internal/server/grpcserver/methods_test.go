package grpcserver

import (
	"context"
	"slices"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"

	lumenv1 "github.com/lumenllm/lumen/gen/lumen/v1"
	"github.com/lumenllm/lumen/internal/inference"
)

// methodLog records the method names a stats handler is shown.
type methodLog struct {
	mu    sync.Mutex
	names []string
}

func (l *methodLog) TagRPC(ctx context.Context, info *stats.RPCTagInfo) context.Context {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.names = append(l.names, info.FullMethodName)
	return ctx
}
func (*methodLog) HandleRPC(context.Context, stats.RPCStats)                         {}
func (*methodLog) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (*methodLog) HandleConn(context.Context, stats.ConnStats)                       {}

// Method names are chosen by clients; those the server does not serve all
// reach telemetry as one name, so they cannot mint spans names or series.
func TestStatsHandlerSeesOnlyServedMethodNames(t *testing.T) {
	log := &methodLog{}
	h := start(t, Config{API: &fakeAPI{tokens: []int32{1}, models: []inference.Model{{ID: "m"}}}, StatsHandler: log})
	if _, err := h.client.Tokenize(context.Background(), &lumenv1.TokenizeRequest{Text: "x"}); err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"/lumen.v1.LumenService/Nope", "/made.up.Service/x1", "/made.up.Service/x2"} {
		var out lumenv1.TokenizeResponse
		err := h.conn.Invoke(context.Background(), m, &lumenv1.TokenizeRequest{}, &out)
		if status.Code(err) != codes.Unimplemented {
			t.Errorf("%s: %v, want Unimplemented", m, err)
		}
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	want := []string{"/lumen.v1.LumenService/Tokenize", UnknownMethod, UnknownMethod, UnknownMethod}
	if !slices.Equal(log.names, want) {
		t.Errorf("stats handler saw %q, want %q", log.names, want)
	}
}
