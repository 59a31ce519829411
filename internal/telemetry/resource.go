package telemetry

import (
	otelsemconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"fmt"
	"net/url"
	"os"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk"
	"go.opentelemetry.io/otel/sdk/resource"
)

// buildResource returns the resource and the service name it carries.
// Precedence, lowest first: detected attributes, OTEL_RESOURCE_ATTRIBUTES,
// cfg.ExtraResource, then service.name (cfg, OTEL_SERVICE_NAME, the
// attribute variable, the default) and cfg.ServiceVersion.
func buildResource(cfg Config, getenv func(string) string) (*resource.Resource, string, error) {
	envAttrs, err := parseResourceAttributes(getenv("OTEL_RESOURCE_ATTRIBUTES"))
	if err != nil {
		return nil, "", err
	}
	name := cfg.ServiceName
	if name == "" {
		name = strings.TrimSpace(getenv("OTEL_SERVICE_NAME"))
	}
	if name == "" {
		for _, kv := range envAttrs {
			if kv.Key == otelsemconv.ServiceNameKey {
				name = kv.Value.AsString()
			}
		}
	}
	if name == "" {
		name = DefaultServiceName
	}

	attrs := []attribute.KeyValue{
		otelsemconv.TelemetrySDKName("opentelemetry"),
		otelsemconv.TelemetrySDKLanguageGo,
		otelsemconv.TelemetrySDKVersion(sdk.Version()),
	}
	if host, err := os.Hostname(); err == nil && host != "" {
		attrs = append(attrs, otelsemconv.HostName(host))
	}
	attrs = append(attrs, envAttrs...)
	attrs = append(attrs, cfg.ExtraResource...)
	attrs = append(attrs, otelsemconv.ServiceName(name))
	if cfg.ServiceVersion != "" {
		attrs = append(attrs, otelsemconv.ServiceVersion(cfg.ServiceVersion))
	}
	// NewWithAttributes keeps the last value of a repeated key.
	return resource.NewWithAttributes(otelsemconv.SchemaURL, attrs...), name, nil
}

// parseResourceAttributes parses OTEL_RESOURCE_ATTRIBUTES:
// comma-separated key=value pairs with percent-encoded values.
func parseResourceAttributes(s string) ([]attribute.KeyValue, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var attrs []attribute.KeyValue
	for pair := range strings.SplitSeq(s, ",") {
		k, v, ok := strings.Cut(pair, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, fmt.Errorf("telemetry: OTEL_RESOURCE_ATTRIBUTES: %q is not key=value", pair)
		}
		val, err := url.PathUnescape(strings.TrimSpace(v))
		if err != nil {
			return nil, fmt.Errorf("telemetry: OTEL_RESOURCE_ATTRIBUTES: value of %q: %w", k, err)
		}
		attrs = append(attrs, attribute.String(k, val))
	}
	return attrs, nil
}
