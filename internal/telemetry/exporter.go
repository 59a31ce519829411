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
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// exportTarget is the resolved exporter: its kind and, for OTLP, the full
// endpoint URL whose scheme says plaintext (http) or TLS (https).
type exportTarget struct {
	kind string
	url  string
}

// resolveExporter decides the exporter and the OTLP endpoint from cfg and
// the environment.
func resolveExporter(cfg Config, getenv func(string) string) (exportTarget, error) {
	kind, source := strings.ToLower(strings.TrimSpace(cfg.Exporter)), "trace exporter"
	if kind == "" {
		kind, source = strings.ToLower(strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER"))), "OTEL_TRACES_EXPORTER"
		if strings.Contains(kind, ",") {
			return exportTarget{}, fmt.Errorf("telemetry: OTEL_TRACES_EXPORTER=%q: only one exporter is supported", kind)
		}
	}
	if kind == "" {
		kind = ExporterNone
		if cfg.Endpoint != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" {
			kind = ExporterOTLP
		}
	}
	if kind == ExporterOTLP {
		var err error
		if kind, err = otlpProtocol(getenv, signalTraces); err != nil {
			return exportTarget{}, err
		}
	}
	switch kind {
	case ExporterOTLPGRPC, ExporterOTLPHTTP:
		u, err := resolveEndpoint(cfg, getenv, kind == ExporterOTLPHTTP, signalTraces)
		if err != nil {
			return exportTarget{}, err
		}
		return exportTarget{kind: kind, url: u}, nil
	case ExporterConsole, ExporterNone:
		return exportTarget{kind: kind}, nil
	default:
		return exportTarget{}, fmt.Errorf("telemetry: %s %q unsupported (want otlp, otlp-grpc, otlp-http, console or none)", source, kind)
	}
}

// otlpProtocol is the exporter that "otlp" means for signal:
// OTEL_EXPORTER_OTLP_{SIGNAL}_PROTOCOL, else OTEL_EXPORTER_OTLP_PROTOCOL,
// says gRPC or HTTP; gRPC when neither is set.
func otlpProtocol(getenv func(string) string, signal string) (string, error) {
	proto := getenv("OTEL_EXPORTER_OTLP_" + strings.ToUpper(signal) + "_PROTOCOL")
	if proto == "" {
		proto = getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
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

// resolveEndpoint returns the OTLP endpoint of signal as a URL. For gRPC
// only its scheme and host matter; for HTTP it is the full URL. The
// configured endpoint (--otlp-endpoint) is the collector for every
// signal: for metrics, a path it has is a prefix (a trailing /v1/traces
// is swapped for /v1/metrics).
func resolveEndpoint(cfg Config, getenv func(string) string, httpProto bool, signal string) (string, error) {
	sig := strings.ToUpper(signal)
	defaultPort := "4317"
	if httpProto {
		defaultPort = "4318"
	}
	const (
		fromConfig = iota
		fromSignalEnv
		fromBaseEnv
		fromDefault
	)
	candidates := []struct{ raw, source string }{
		fromConfig:    {cfg.Endpoint, "OTLP endpoint"},
		fromSignalEnv: {getenv("OTEL_EXPORTER_OTLP_" + sig + "_ENDPOINT"), "OTEL_EXPORTER_OTLP_" + sig + "_ENDPOINT"},
		fromBaseEnv:   {getenv("OTEL_EXPORTER_OTLP_ENDPOINT"), "OTEL_EXPORTER_OTLP_ENDPOINT"},
		fromDefault:   {"localhost:" + defaultPort, "default OTLP endpoint"},
	}
	from := fromConfig
	for strings.TrimSpace(candidates[from].raw) == "" {
		from++
	}
	raw, source := strings.TrimSpace(candidates[from].raw), candidates[from].source

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
		insecure := isLoopback(hostname)
		for _, key := range []string{"OTEL_EXPORTER_OTLP_" + sig + "_INSECURE", "OTEL_EXPORTER_OTLP_INSECURE"} {
			if getenv(key) == "" {
				continue
			}
			v, err := envBool(getenv, key)
			if err != nil {
				return "", err
			}
			insecure = insecure || v
			break
		}
		scheme = "https"
		if insecure {
			scheme = "http"
		}
	}
	if cfg.Insecure {
		scheme = "http"
	}

	if httpProto {
		switch {
		case from == fromSignalEnv:
			// Used as is; a URL without a path posts to the root.
			if path == "" {
				path = "/"
			}
		case from == fromBaseEnv:
			path = strings.TrimSuffix(path, "/") + "/v1/" + signal
		case path == "" || path == "/":
			path = "/v1/" + signal
		case signal != signalTraces:
			path = strings.TrimSuffix(strings.TrimSuffix(path, "/v1/"+signalTraces), "/") + "/v1/" + signal
		}
	} else {
		path = ""
	}
	return scheme + "://" + host + path, nil
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
func newSpanExporter(ctx context.Context, target exportTarget, console io.Writer, timeout time.Duration) (sdktrace.SpanExporter, error) {
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
		// WithBlock dial option is ever passed.
		exp, err = otlptracegrpc.New(ctx,
			otlptracegrpc.WithEndpointURL(target.url),
			otlptracegrpc.WithTimeout(timeout),
		)
	case ExporterOTLPHTTP:
		exp, err = otlptracehttp.New(ctx,
			otlptracehttp.WithEndpointURL(target.url),
			otlptracehttp.WithTimeout(timeout),
		)
	default:
		return nil, fmt.Errorf("telemetry: unknown exporter %q", target.kind)
	}
	if err != nil {
		return nil, fmt.Errorf("telemetry: create %s exporter: %w", target.kind, err)
	}
	return exp, nil
}
