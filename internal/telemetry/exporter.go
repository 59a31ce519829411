package telemetry

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// exportTarget is the resolved exporter. For OTLP, either endpointURL is
// the collector from Config.Endpoint, passed as an option (so it wins
// over the environment), or it is empty and the exporter reads its
// OTEL_EXPORTER_OTLP_* endpoint variables itself; insecure adds
// plaintext on top. endpoint is what the startup log shows.
type exportTarget struct {
	kind        string
	endpoint    string
	endpointURL string
	insecure    bool
}

// resolveExporter decides the trace exporter from cfg and the
// environment: which kind (the SDK has no rule for that without
// autoexport) and, for OTLP, the options it gets.
func resolveExporter(cfg Config) (exportTarget, error) {
	kind, source := strings.ToLower(strings.TrimSpace(cfg.Exporter)), "trace exporter"
	if kind == "" {
		kind, source = strings.ToLower(strings.TrimSpace(os.Getenv("OTEL_TRACES_EXPORTER"))), "OTEL_TRACES_EXPORTER"
		if strings.Contains(kind, ",") {
			return exportTarget{}, fmt.Errorf("telemetry: OTEL_TRACES_EXPORTER=%q: only one exporter is supported", kind)
		}
	}
	if kind == "" {
		kind = ExporterNone
		if cfg.Endpoint != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" {
			kind = ExporterOTLP
		}
	}
	if kind == ExporterOTLP {
		var err error
		if kind, err = otlpProtocol(signalTraces); err != nil {
			return exportTarget{}, err
		}
	}
	switch kind {
	case ExporterOTLPGRPC, ExporterOTLPHTTP:
		return otlpTarget(cfg, kind, signalTraces)
	case ExporterConsole, ExporterNone:
		return exportTarget{kind: kind}, nil
	default:
		return exportTarget{}, fmt.Errorf("telemetry: %s %q unsupported (want otlp, otlp-grpc, otlp-http, console or none)", source, kind)
	}
}

// otlpProtocol is the exporter that "otlp" means for signal:
// OTEL_EXPORTER_OTLP_{SIGNAL}_PROTOCOL, else OTEL_EXPORTER_OTLP_PROTOCOL,
// says gRPC or HTTP; gRPC when neither is set.
func otlpProtocol(signal string) (string, error) {
	proto := os.Getenv("OTEL_EXPORTER_OTLP_" + strings.ToUpper(signal) + "_PROTOCOL")
	if proto == "" {
		proto = os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	switch strings.ToLower(strings.TrimSpace(proto)) {
	case "", "grpc":
		return ExporterOTLPGRPC, nil
	case "http/protobuf":
		return ExporterOTLPHTTP, nil
	default:
		return "", fmt.Errorf("telemetry: unsupported OTLP protocol %q for %s (want grpc or http/protobuf)", proto, signal)
	}
}

// OTLP signals, as they appear in OTEL_EXPORTER_OTLP_{SIGNAL}_* variable
// names (upper-cased) and in OTLP/HTTP paths (/v1/{signal}).
const (
	signalTraces  = "traces"
	signalMetrics = "metrics"
)

// otlpTarget is the OTLP exporter of kind for signal: at Config.Endpoint
// when it is set, else wherever the exporter's variables say.
func otlpTarget(cfg Config, kind, signal string) (exportTarget, error) {
	httpProto := kind == ExporterOTLPHTTP
	if strings.TrimSpace(cfg.Endpoint) != "" {
		u, err := flagEndpoint(cfg.Endpoint, cfg.Insecure, httpProto, signal)
		if err != nil {
			return exportTarget{}, err
		}
		return exportTarget{kind: kind, endpoint: u, endpointURL: u}, nil
	}
	shown, loopback, err := envEndpoint(httpProto, signal)
	if err != nil {
		return exportTarget{}, err
	}
	return exportTarget{kind: kind, endpoint: shown, insecure: loopback || cfg.Insecure}, nil
}

// flagEndpoint returns the collector of --otlp-endpoint as the URL for
// signal. For gRPC only its scheme and host matter; for HTTP it is the
// full URL. The flag names the collector of every signal: for metrics, a
// path it has is a prefix (a trailing /v1/traces is swapped for
// /v1/metrics). A host:port is plaintext on loopback or with insecure,
// TLS otherwise.
func flagEndpoint(raw string, insecure, httpProto bool, signal string) (string, error) {
	const source = "OTLP endpoint"
	raw = strings.TrimSpace(raw)
	defaultPort := "4317"
	if httpProto {
		defaultPort = "4318"
	}
	var scheme, host, path string
	if strings.Contains(raw, "://") {
		u, err := url.Parse(raw)
		if err != nil {
			return "", fmt.Errorf("telemetry: %s: %w", source, err)
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			return "", fmt.Errorf("telemetry: %s %q: scheme must be http or https", source, raw)
		}
		if u.Host == "" {
			return "", fmt.Errorf("telemetry: %s %q: no host", source, raw)
		}
		if p := u.Port(); p != "" && !validPort(p) {
			return "", fmt.Errorf("telemetry: %s %q: bad port %q", source, raw, p)
		}
		// A URL without a port means the scheme's (443 or 80).
		scheme, host, path = u.Scheme, u.Host, u.EscapedPath()
	} else {
		if strings.ContainsAny(raw, "/?#") {
			return "", fmt.Errorf("telemetry: %s %q: want host:port or a URL", source, raw)
		}
		host = raw
		if _, _, err := net.SplitHostPort(host); err != nil {
			// No port (or a bare IPv6 address): the OTLP one.
			host = net.JoinHostPort(strings.Trim(host, "[]"), defaultPort)
		}
		_, port, err := net.SplitHostPort(host)
		if err != nil {
			return "", fmt.Errorf("telemetry: %s %q: %w", source, raw, err)
		}
		if !validPort(port) {
			return "", fmt.Errorf("telemetry: %s %q: bad port %q", source, raw, port)
		}
	}
	hostname := (&url.URL{Host: host}).Hostname()
	if hostname == "" {
		return "", fmt.Errorf("telemetry: %s %q: no host", source, raw)
	}
	if scheme == "" {
		scheme = "https"
		if isLoopback(hostname) {
			scheme = "http"
		}
	}
	if insecure {
		scheme = "http"
	}

	switch {
	case !httpProto:
		path = ""
	case path == "" || path == "/":
		path = "/v1/" + signal
	case signal != signalTraces:
		path = strings.TrimSuffix(strings.TrimSuffix(path, "/v1/"+signalTraces), "/") + "/v1/" + signal
	}
	return scheme + "://" + host + path, nil
}

// envEndpoint looks at the endpoint the OTLP exporter of signal will read
// for itself, OTEL_EXPORTER_OTLP_{SIGNAL}_ENDPOINT, else
// OTEL_EXPORTER_OTLP_ENDPOINT, else its default (localhost), and returns
// it for the log and whether it names a loopback host without an https
// scheme (Lumen then adds plaintext, which the exporter would not: it
// uses TLS unless the scheme is http or an _INSECURE variable says
// otherwise). It refuses a value the exporter would ignore in favour of
// its default (one it cannot parse as a URL, such as 10.0.0.5:4317) or,
// for HTTP, could not post to (one without an http or https scheme).
func envEndpoint(httpProto bool, signal string) (shown string, loopback bool, err error) {
	key := "OTEL_EXPORTER_OTLP_" + strings.ToUpper(signal) + "_ENDPOINT"
	raw := strings.TrimSpace(os.Getenv(key))
	if raw == "" {
		key = "OTEL_EXPORTER_OTLP_ENDPOINT"
		raw = strings.TrimSpace(os.Getenv(key))
	}
	if raw == "" {
		if httpProto {
			return "http://localhost:4318/v1/" + signal, true, nil
		}
		return "http://localhost:4317", true, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", false, fmt.Errorf("telemetry: %s=%q is not a URL the exporter can read (write http://host:port or https://host:port): %w", key, raw, err)
	}
	hasScheme := strings.Contains(raw, "://")
	if httpProto && (!hasScheme || (u.Scheme != "http" && u.Scheme != "https")) {
		return "", false, fmt.Errorf("telemetry: %s=%q: OTLP/HTTP needs a URL with an http or https scheme", key, raw)
	}
	if !hasScheme {
		// A bare host:port, which only the gRPC exporter takes (as a
		// target, with TLS unless an _INSECURE variable says otherwise).
		host := raw
		if h, _, err := net.SplitHostPort(raw); err == nil {
			host = h
		}
		return raw, isLoopback(host), nil
	}
	return raw, u.Scheme != "https" && isLoopback(u.Hostname()), nil
}

func validPort(p string) bool {
	n, err := strconv.ParseUint(p, 10, 16)
	return err == nil && n > 0
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// newSpanExporter builds the exporter for target; nil for "none".
func newSpanExporter(ctx context.Context, target exportTarget, console io.Writer) (sdktrace.SpanExporter, error) {
	var (
		exp sdktrace.SpanExporter
		err error
	)
	switch target.kind {
	case ExporterNone:
		return nil, nil
	case ExporterConsole:
		if console == nil {
			console = os.Stdout
		}
		exp, err = stdouttrace.New(stdouttrace.WithWriter(console), stdouttrace.WithPrettyPrint())
	case ExporterOTLPGRPC:
		// grpc.NewClient underneath: the connection is made lazily, and no
		// WithBlock dial option is ever passed. Each export is bounded by
		// the export queue's timeout (its context).
		exp, err = otlptracegrpc.New(ctx, options(target, otlptracegrpc.WithEndpointURL, otlptracegrpc.WithInsecure)...)
	case ExporterOTLPHTTP:
		exp, err = otlptracehttp.New(ctx, options(target, otlptracehttp.WithEndpointURL, otlptracehttp.WithInsecure)...)
	default:
		return nil, fmt.Errorf("telemetry: unknown exporter %q", target.kind)
	}
	if err != nil {
		return nil, fmt.Errorf("telemetry: create %s exporter: %w", target.kind, err)
	}
	return exp, nil
}

// options are the target's options for one OTLP exporter package, built
// with its constructors: the endpoint only when the flag named it (else
// the exporter reads its variables), plaintext when Setup decided so.
func options[O any](t exportTarget, withEndpointURL func(string) O, withInsecure func() O, base ...O) []O {
	opts := base
	if t.endpointURL != "" {
		opts = append(opts, withEndpointURL(t.endpointURL))
	}
	if t.insecure {
		opts = append(opts, withInsecure())
	}
	return opts
}
