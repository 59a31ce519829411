package inference

import (
	"context"
	"net"
	"strconv"
)

type serverAddrKey struct{}

// serverAddr is the listener that received a request.
type serverAddr struct {
	host string
	port int
}

// WithServerAddr records on ctx the local address of the connection a
// request arrived on (the transport knows it; nil is ignored). The
// request span reports it as server.address and server.port.
func WithServerAddr(ctx context.Context, addr net.Addr) context.Context {
	if addr == nil {
		return ctx
	}
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return ctx
	}
	n, _ := strconv.Atoi(port)
	return context.WithValue(ctx, serverAddrKey{}, serverAddr{host: host, port: n})
}

// serverAddrOf is what WithServerAddr recorded ("" and 0 when nothing).
func serverAddrOf(ctx context.Context) (string, int) {
	a, _ := ctx.Value(serverAddrKey{}).(serverAddr)
	return a.host, a.port
}
