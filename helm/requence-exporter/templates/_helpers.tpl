{{/* Chart name, truncated to the 63 characters Kubernetes names allow. */}}
{{- define "requence-exporter.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: release-qualified unless the release name already contains the chart name. */}}
{{- define "requence-exporter.fullname" -}}
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

{{- define "requence-exporter.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "requence-exporter.selectorLabels" -}}
app.kubernetes.io/name: {{ include "requence-exporter.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "requence-exporter.labels" -}}
helm.sh/chart: {{ include "requence-exporter.chart" . }}
{{ include "requence-exporter.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: requence
{{- end }}

{{- define "requence-exporter.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "requence-exporter.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "requence-exporter.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The chart's own Secret carries whichever secrets were given as values. */}}
{{- define "requence-exporter.createSecret" -}}
{{- if or (and .Values.requence.accessToken (not .Values.requence.existingSecret)) (and .Values.otlp.headers (not .Values.otlp.headersSecret.name)) }}true{{ end }}
{{- end }}

{{- define "requence-exporter.sharded" -}}
{{- if gt (int .Values.sharding.shards) 1 }}true{{ end }}
{{- end }}

{{/* Where the state file lives; the image makes this the only writable path besides /tmp. */}}
{{- define "requence-exporter.stateDir" -}}
/var/lib/requence-exporter
{{- end }}

{{/* PVC spec shared by the standalone claim and the StatefulSet's claim template. */}}
{{- define "requence-exporter.pvcSpec" -}}
accessModes:
  {{- toYaml .Values.persistence.accessModes | nindent 2 }}
{{- if .Values.persistence.storageClass }}
{{- if eq "-" .Values.persistence.storageClass }}
storageClassName: ""
{{- else }}
storageClassName: {{ .Values.persistence.storageClass | quote }}
{{- end }}
{{- end }}
resources:
  requests:
    storage: {{ .Values.persistence.size | quote }}
{{- end }}

{{/* A rule threshold written inside a double-quoted YAML string of files/alerts.tmpl.yml. */}}
{{- define "requence-exporter.ruleText" -}}
{{- toString . | toJson | trimPrefix "\"" | trimSuffix "\"" }}
{{- end }}

{{/* A rule threshold written inside a PromQL string inside a double-quoted YAML string. */}}
{{- define "requence-exporter.rulePromqlString" -}}
{{- include "requence-exporter.ruleText" (toString . | replace "\\" "\\\\" | replace "\"" "\\\"") }}
{{- end }}

{{/* Where the web config Secret (and the TLS Secret) are mounted. */}}
{{- define "requence-exporter.webConfigDir" -}}
/etc/requence-exporter/web
{{- end }}

{{/* The file --web.config.file names. */}}
{{- define "requence-exporter.webConfigFile" -}}
{{- include "requence-exporter.webConfigDir" . }}/{{ ternary .Values.webConfig.existingSecretKey "web-config.yml" (not (empty .Values.webConfig.existingSecret)) }}
{{- end }}

{{/* "true" when the exporter serves HTTPS: said explicitly, or implied by the web config. */}}
{{- define "requence-exporter.webTLS" -}}
{{- if .Values.webConfig.enabled }}
{{- if kindIs "bool" .Values.webConfig.tls }}
{{- if .Values.webConfig.tls }}true{{ end }}
{{- else if or .Values.webConfig.tlsSecret (and (not .Values.webConfig.existingSecret) .Values.webConfig.config.tls_server_config) }}true
{{- end }}
{{- end }}
{{- end }}
