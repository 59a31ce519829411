{{/*
The chart's name, for the app.kubernetes.io/name label (63 characters at
most, as label values are).
*/}}
{{- define "lumen.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The release's full name, which names every object: the release name, with
the chart name in front unless the release name already contains it.
*/}}
{{- define "lumen.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "lumen.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Selector labels: what the Deployment and the Service select pods by.
*/}}
{{- define "lumen.selectorLabels" -}}
app.kubernetes.io/name: {{ include "lumen.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Labels of every object.
*/}}
{{- define "lumen.labels" -}}
helm.sh/chart: {{ include "lumen.chart" . }}
{{ include "lumen.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
The model id clients use (--model-name), also the lumen/model pod label:
model.name, else the file name without .gguf, else "demo". Fails unless it
is a valid label value.
*/}}
{{- define "lumen.modelName" -}}
{{- $name := .Values.model.name }}
{{- if not $name }}
{{- if eq .Values.model.source "demo" }}
{{- $name = "demo" }}
{{- else }}
{{- $name = base .Values.model.file | trimSuffix ".gguf" }}
{{- end }}
{{- end }}
{{- if not (regexMatch "^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$" $name) }}
{{- fail (printf "model name %q is not a valid label value (63 characters at most: letters, digits, '-', '_', '.'; alphanumeric at both ends): set model.name" $name) }}
{{- end }}
{{- $name }}
{{- end }}

{{/*
Pod labels an InferencePool selects on: the app name and the model, so
every release serving the same model joins one pool; and the engine type
the endpoint picker's core-metrics-extractor maps to Lumen's metric names
(deploy/epp/endpointpicker.yaml).
*/}}
{{- define "lumen.poolLabels" -}}
app.kubernetes.io/name: {{ include "lumen.name" . }}
lumen/model: {{ include "lumen.modelName" . }}
{{- end }}

{{- define "lumen.engineLabel" -}}
inference.networking.k8s.io/engine-type: lumen
{{- end }}

{{- define "lumen.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "lumen.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The image: image.tag, else cuda with the GPU on and cpu without (the tags
docker/Dockerfile.cuda and docker/Dockerfile are built as).
*/}}
{{- define "lumen.image" -}}
{{- $tag := .Values.image.tag | default (ternary "cuda" "cpu" (.Values.gpu.enabled | default false)) }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}

{{/*
After the drain, lumen serve gives its HTTP and gRPC servers up to 5
seconds to flush before it exits (cmd/lumen/serve.go); the grace period
must cover that too.
*/}}
{{- define "lumen.shutdownFlushSeconds" -}}5{{- end }}

{{/*
terminationGracePeriodSeconds: the value given, which must be at least the
preStop sleep + the drain timeout + the shutdown flush, or that sum when
none is given.
*/}}
{{- define "lumen.terminationGracePeriodSeconds" -}}
{{- $preStop := int .Values.lifecycle.preStopSleepSeconds }}
{{- $drain := int .Values.server.drainTimeoutSeconds }}
{{- $flush := int (include "lumen.shutdownFlushSeconds" .) }}
{{- $least := add $preStop $drain $flush }}
{{- $given := .Values.terminationGracePeriodSeconds }}
{{- if kindIs "invalid" $given }}
{{- $least }}
{{- else if lt (int $given) $least }}
{{- fail (printf "terminationGracePeriodSeconds %d is shorter than lifecycle.preStopSleepSeconds (%d) + server.drainTimeoutSeconds (%d) + Lumen's %d s shutdown flush = %d: the pod would be killed while requests drain; raise it to at least %d or lower the drain timeout" (int $given) $preStop $drain $flush $least $least) }}
{{- else }}
{{- int $given }}
{{- end }}
{{- end }}

{{/*
The Host names the HTTP API answers to (--allowed-hosts): server.allowedHosts
and, without an API key, the Service's DNS names. Empty with an API key and
no names given, which leaves Lumen's Host check off.
*/}}
{{- define "lumen.allowedHosts" -}}
{{- $hosts := list }}
{{- if not .Values.server.apiKey.existingSecret }}
{{- $svc := include "lumen.fullname" . }}
{{- $ns := .Release.Namespace }}
{{- $hosts = list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.%s" $svc $ns (.Values.clusterDomain | default "cluster.local")) }}
{{- end }}
{{- $hosts = concat $hosts (.Values.server.allowedHosts | default list) }}
{{- join "," $hosts }}
{{- end }}
