package telemetry

import (
	otelsemconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"context"
	"errors"
	"fmt"

	"go.opentelemetry.io/otel/sdk/resource"
)

// buildResource returns the resource and the service name it carries.
// Precedence, lowest first: the SDK's telemetry.sdk.* and host.name
// detectors, service.name "lumen", the SDK's environment detector
// (OTEL_RESOURCE_ATTRIBUTES, then OTEL_SERVICE_NAME over its
// service.name), cfg.ExtraResource, then cfg.ServiceName and
// cfg.ServiceVersion.
func buildResource(ctx context.Context, cfg Config) (*resource.Resource, string, error) {
	var own []resource.Option
	if cfg.ServiceName != "" {
		own = append(own, resource.WithAttributes(otelsemconv.ServiceName(cfg.ServiceName)))
	}
	if cfg.ServiceVersion != "" {
		own = append(own, resource.WithAttributes(otelsemconv.ServiceVersion(cfg.ServiceVersion)))
	}
	opts := append([]resource.Option{
		resource.WithSchemaURL(otelsemconv.SchemaURL),
		resource.WithTelemetrySDK(),
		resource.WithHost(),
		resource.WithAttributes(otelsemconv.ServiceName(DefaultServiceName)),
		resource.WithFromEnv(),
		resource.WithAttributes(cfg.ExtraResource...),
	}, own...)
	res, err := resource.New(ctx, opts...)
	if err != nil {
		// The environment detector's only error is a partial resource: a
		// pair without "=" (it keeps the rest, and a value it cannot
		// percent-decode as written). A half-read variable is a mistake
		// worth stopping for.
		if errors.Is(err, resource.ErrPartialResource) {
			return nil, "", fmt.Errorf("telemetry: OTEL_RESOURCE_ATTRIBUTES (comma-separated key=value pairs): %w", err)
		}
		return nil, "", fmt.Errorf("telemetry: resource: %w", err)
	}
	name, _ := res.Set().Value(otelsemconv.ServiceNameKey)
	return res, name.AsString(), nil
}
