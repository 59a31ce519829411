package telemetry

import (
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// buildSpanLimits returns the SDK's span limits, which it reads from
// OTEL_SPAN_*, OTEL_ATTRIBUTE_*, OTEL_EVENT_* and OTEL_LINK_*, with
// Lumen's attribute value length: cfg's, else 4096 unless a length
// variable is set (the SDK's default is unlimited). A variable the SDK
// cannot read as an integer is its business: it keeps its default.
func buildSpanLimits(cfg Config) sdktrace.SpanLimits {
	limits := sdktrace.NewSpanLimits()
	switch {
	case cfg.MaxAttributeValueLength > 0:
		limits.AttributeValueLengthLimit = cfg.MaxAttributeValueLength
	case cfg.MaxAttributeValueLength < 0:
		limits.AttributeValueLengthLimit = -1
	case !envSet("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT") && !envSet("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT"):
		limits.AttributeValueLengthLimit = DefaultMaxAttributeValueLength
	}
	return limits
}

// envSet says whether key is set to something, as the SDK sees it (an
// empty value is unset).
func envSet(key string) bool {
	v, ok := os.LookupEnv(key)
	return ok && v != ""
}

// resolveQueueOptions applies cfg, then the OTEL_BSP_* variables, then the
// defaults. The variables are the SDK batch span processor's, which Lumen
// does not use (its export queue counts what it drops), so it reads them
// itself.
func resolveQueueOptions(cfg Config) (queueOptions, error) {
	count := func(v int, key string, def int) (int, error) {
		if v > 0 {
			return v, nil
		}
		n, ok, err := envInt(key)
		if err != nil {
			return 0, err
		}
		if !ok {
			return def, nil
		}
		if n <= 0 {
			return 0, fmt.Errorf("telemetry: %s=%d: must be positive", key, n)
		}
		return n, nil
	}
	millis := func(v time.Duration, key string, def time.Duration) (time.Duration, error) {
		if v > 0 {
			return v, nil
		}
		n, err := count(0, key, int(def/time.Millisecond))
		return time.Duration(n) * time.Millisecond, err
	}
	var o queueOptions
	var err error
	if o.maxQueue, err = count(cfg.MaxQueueSize, "OTEL_BSP_MAX_QUEUE_SIZE", DefaultMaxQueueSize); err != nil {
		return o, err
	}
	if o.maxBatch, err = count(cfg.MaxExportBatchSize, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", DefaultMaxExportBatchSize); err != nil {
		return o, err
	}
	o.maxBatch = min(o.maxBatch, o.maxQueue)
	if o.batchTimeout, err = millis(cfg.BatchTimeout, "OTEL_BSP_SCHEDULE_DELAY", DefaultBatchTimeout); err != nil {
		return o, err
	}
	if o.exportTimeout, err = millis(cfg.ExportTimeout, "OTEL_BSP_EXPORT_TIMEOUT", DefaultExportTimeout); err != nil {
		return o, err
	}
	return o, nil
}

// envBool reads a boolean variable: "true" or "false" in any case, empty
// meaning false.
func envBool(key string) (bool, error) {
	v := strings.TrimSpace(os.Getenv(key))
	switch strings.ToLower(v) {
	case "":
		return false, nil
	case "true":
		return true, nil
	case "false":
		return false, nil
	default:
		return false, fmt.Errorf("telemetry: %s=%q: want true or false", key, v)
	}
}

// envInt reads an integer variable; ok is false when it is unset.
func envInt(key string) (n int, ok bool, err error) {
	v := strings.TrimSpace(os.Getenv(key))
	if v == "" {
		return 0, false, nil
	}
	n, err = strconv.Atoi(v)
	if err != nil {
		return 0, false, fmt.Errorf("telemetry: %s=%q: want an integer", key, v)
	}
	return n, true, nil
}
