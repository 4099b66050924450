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

{{/* The namespace of the release's objects. */}}
{{- define "requence-exporter.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride | trunc 63 | trimSuffix "-" }}
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
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
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

{{/*
A value printed as a scalar. Helm reads numbers as floats, which print as 1e+06 from a million
on; whole numbers print as integers so the exporter (and Kubernetes) can parse them.
*/}}
{{- define "requence-exporter.scalar" -}}
{{- if and (kindIs "float64" .) (eq (floor .) .) }}{{ int64 . }}{{ else }}{{ toString . }}{{ end }}
{{- end }}

{{/* Values the chart cannot run with fail the render, not the pod. */}}
{{- define "requence-exporter.validate" -}}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if not (regexMatch "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$" $name) }}
{{- fail (printf "nameOverride %q: lower-case letters, digits and '-', starting and ending with a letter or digit" $name) }}
{{- end }}
{{- if and .Values.fullnameOverride (not (regexMatch "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$" .Values.fullnameOverride)) }}
{{- fail (printf "fullnameOverride %q: lower-case letters, digits and '-', starting and ending with a letter or digit" .Values.fullnameOverride) }}
{{- end }}
{{- $tokenEnv := list "REQUENCE_ACCESS_TOKEN" "REQUENCE_TASK_ACCESS_TOKEN" "REQUENCE_EXPORTER_ACCESS_TOKEN" "REQUENCE_EXPORTER_ACCESS_TOKEN_FILE" "REQUENCE_EXPORTER_BEARER_TOKEN" "REQUENCE_EXPORTER_BEARER_TOKEN_FILE" }}
{{- $fromEnv := false }}
{{- range .Values.extraEnv }}{{ if has .name $tokenEnv }}{{ $fromEnv = true }}{{ end }}{{ end }}
{{- if not (or .Values.requence.accessToken .Values.requence.existingSecret (index .Values.config "access-token-file") (index .Values.config "bearer-token-file") $fromEnv .Values.extraEnvFrom) }}
{{- fail "no Requence access token: set requence.existingSecret (a Secret holding the token, key requence.existingSecretKey) or requence.accessToken" }}
{{- end }}
{{- $own := include "requence-exporter.labels" (dict "Values" (omit .Values "commonLabels") "Chart" .Chart "Release" .Release) | fromYaml }}
{{- range $label, $_ := .Values.commonLabels }}
{{- if hasKey $own $label }}
{{- fail (printf "commonLabels.%s: a label the chart sets itself, which commonLabels cannot change" $label) }}
{{- end }}
{{- end }}
{{- range $label, $_ := .Values.podLabels }}
{{- if hasKey (include "requence-exporter.selectorLabels" $ | fromYaml) $label }}
{{- fail (printf "podLabels.%s: a selector label of the chart, which podLabels cannot change" $label) }}
{{- end }}
{{- end }}
{{- if .Values.serviceMonitor.enabled }}
{{- with .Values.serviceMonitor.jobLabel }}
{{- if not (get (include "requence-exporter.serviceLabels" $ | fromYaml) .) }}
{{- fail (printf "serviceMonitor.jobLabel %s: the Service has no such label; add it with service.labels (or commonLabels)" .) }}
{{- end }}
{{- end }}
{{- $interval := include "requence-exporter.seconds" .Values.serviceMonitor.interval | float64 }}
{{- $timeout := include "requence-exporter.seconds" .Values.serviceMonitor.scrapeTimeout | float64 }}
{{- if gt $timeout $interval }}
{{- fail (printf "serviceMonitor.scrapeTimeout (%s) is longer than serviceMonitor.interval (%s); Prometheus refuses that" .Values.serviceMonitor.scrapeTimeout .Values.serviceMonitor.interval) }}
{{- end }}
{{- if and (include "requence-exporter.webTLS" .) (not .Values.serviceMonitor.tlsConfig) (not .Values.webConfig.tlsSecret) }}
{{- fail "webConfig turns TLS on without webConfig.tlsSecret, so serviceMonitor.tlsConfig must say how Prometheus verifies the exporter: e.g. {ca: {secret: {name: <tls secret>, key: ca.crt}}, serverName: <service>.<namespace>.svc}, or {insecureSkipVerify: true} to skip verification" }}
{{- end }}
{{- end }}
{{- end }}

{{/* A Prometheus duration (1h30m, 15s, 500ms) in seconds. */}}
{{- define "requence-exporter.seconds" -}}
{{- $units := dict "ms" 0.001 "s" 1.0 "m" 60.0 "h" 3600.0 "d" 86400.0 "w" 604800.0 "y" 31536000.0 }}
{{- $total := 0.0 }}
{{- range regexFindAll "[0-9]+(ms|s|m|h|d|w|y)" (toString .) -1 }}
{{- $unit := regexFind "(ms|s|m|h|d|w|y)$" . }}
{{- $total = addf $total (mulf (trimSuffix $unit . | float64) (get $units $unit)) }}
{{- end }}
{{- /* Whole seconds as an integer: Go would print 2419200.0 as 2.4192e+06. */}}
{{- if eq $total (floor $total) }}{{ int64 $total }}{{ else }}{{ $total }}{{ end }}
{{- end }}

{{/* Labels of the Service the ServiceMonitor scrapes. */}}
{{- define "requence-exporter.serviceLabels" -}}
{{ include "requence-exporter.labels" . }}
{{- with .Values.service.labels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
The job label Prometheus gives the exporter's scrapes: prometheusRule.job when set, else the
job the chart's ServiceMonitor produces (the Service's name, or the value of its jobLabel).
*/}}
{{- define "requence-exporter.scrapeJob" -}}
{{- if .Values.prometheusRule.job }}
{{- .Values.prometheusRule.job }}
{{- else if .Values.serviceMonitor.jobLabel }}
{{- $labels := include "requence-exporter.serviceLabels" . | fromYaml }}
{{- $job := get $labels .Values.serviceMonitor.jobLabel }}
{{- if not $job }}
{{- fail (printf "serviceMonitor.jobLabel %s: the Service has no such label; add it with service.labels (or commonLabels)" .Values.serviceMonitor.jobLabel) }}
{{- end }}
{{- $job }}
{{- else }}
{{- include "requence-exporter.fullname" . }}
{{- end }}
{{- end }}

{{/* The StatefulSet's governing Service: headless, so that it never replaces the scrape Service. */}}
{{- define "requence-exporter.headlessName" -}}
{{- printf "%s-headless" (include "requence-exporter.fullname" . | trunc 54 | trimSuffix "-") }}
{{- end }}

{{/*
Annotations of the Deployment or StatefulSet. The chart's own Secret rolls the pod through a
checksum; Secrets of your own roll it only through a controller such as Stakater Reloader.
*/}}
{{- define "requence-exporter.workloadAnnotations" -}}
{{- $existing := list }}
{{- with .Values.requence.existingSecret }}{{ $existing = append $existing . }}{{ end }}
{{- with .Values.otlp.headersSecret.name }}{{ $existing = append $existing . }}{{ end }}
{{- if .Values.webConfig.enabled }}{{ with .Values.webConfig.existingSecret }}{{ $existing = append $existing . }}{{ end }}{{ end }}
{{- $annotations := deepCopy (default dict .Values.annotations) }}
{{- if and .Values.reloader.enabled $existing }}
{{- $_ := set $annotations "secret.reloader.stakater.com/reload" ($existing | uniq | join ",") }}
{{- end }}
{{- with $annotations }}
{{- toYaml . }}
{{- end }}
{{- end }}

{{/*
How Prometheus verifies the exporter's certificate: serviceMonitor.tlsConfig, or by default the
CA of webConfig.tlsSecret (cert-manager writes ca.crt) and the Service's DNS name.
*/}}
{{- define "requence-exporter.scrapeTLSConfig" -}}
{{- if .Values.serviceMonitor.tlsConfig }}
{{- toYaml .Values.serviceMonitor.tlsConfig }}
{{- else }}
ca:
  secret:
    name: {{ .Values.webConfig.tlsSecret | quote }}
    key: ca.crt
serverName: {{ printf "%s.%s.svc" (include "requence-exporter.fullname" .) (include "requence-exporter.namespace" .) | quote }}
{{- end }}
{{- end }}

{{/*
The job every rule of files/alerts.tmpl.yml reads, written inside a single-quoted PromQL string
(which itself may sit in a double-quoted YAML string): quotes and backslashes are refused.
*/}}
{{- define "requence-exporter.ruleJob" -}}
{{- $job := include "requence-exporter.scrapeJob" . }}
{{- if regexMatch "['\"\\\\\\n]" $job }}
{{- fail (printf "prometheusRule.job %q: a job name without quotes or backslashes" $job) }}
{{- end }}
{{- $job }}
{{- end }}

{{/*
The namespace every rule reads, as a regex in a single-quoted PromQL string: the release's
namespace, or any with prometheusRule.matchNamespace off.
*/}}
{{- define "requence-exporter.ruleNamespaceRegex" -}}
{{- if .Values.prometheusRule.matchNamespace }}
{{- regexQuoteMeta (include "requence-exporter.namespace" .) }}
{{- else }}
{{- ".*" }}
{{- end }}
{{- end }}

{{/*
A burn-rate factor of the SLO alerts: (list value default slo_window). Set in the values, it is
used as it is; unset, the default (made for a 28d window) scales with slo_window, as
`requence-exporter rules` scales it.
*/}}
{{- define "requence-exporter.burnRate" -}}
{{- $value := index . 0 }}
{{- if not (kindIs "invalid" $value) }}
{{- $value }}
{{- else }}
{{- $window := include "requence-exporter.seconds" (index . 2) | float64 }}
{{- mulf (index . 1) (divf $window 2419200.0) }}
{{- end }}
{{- end }}

{{/* exporter_job_regex of exporter/metrics/alerting/rules.py in the chart: exactly the release's job. */}}
{{- define "requence-exporter.ruleJobRegex" -}}
{{- include "requence-exporter.rulePromqlString" (regexQuoteMeta (include "requence-exporter.ruleJob" .)) }}
{{- end }}
