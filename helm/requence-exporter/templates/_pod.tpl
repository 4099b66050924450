{{/* The pod template shared by the Deployment (one exporter) and the StatefulSet (shards). */}}
{{- define "requence-exporter.podTemplate" -}}
metadata:
  labels:
    {{- include "requence-exporter.selectorLabels" . | nindent 4 }}
    {{- with .Values.commonLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
    {{- with .Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    {{- /* Roll the pod when the secrets it reads at start-up change. */}}
    checksum/secret: {{ include (print $.Template.BasePath "/secret.yaml") . | sha256sum }}
    {{- if .Values.webConfig.enabled }}
    {{- /* Users and headers are read once at start-up; certificates reload by themselves. */}}
    checksum/web-config: {{ include (print $.Template.BasePath "/webconfig-secret.yaml") . | sha256sum }}
    {{- end }}
    {{- with .Values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  # The exporter finds nothing through service links; thousands of them slow pod start-up.
  enableServiceLinks: false
  serviceAccountName: {{ include "requence-exporter.serviceAccountName" . }}
  automountServiceAccountToken: {{ .Values.serviceAccount.automountServiceAccountToken }}
  {{- with .Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.priorityClassName }}
  priorityClassName: {{ . | quote }}
  {{- end }}
  terminationGracePeriodSeconds: {{ include "requence-exporter.scalar" .Values.terminationGracePeriodSeconds }}
  securityContext:
    {{- toYaml .Values.podSecurityContext | nindent 4 }}
  {{- with .Values.initContainers }}
  initContainers:
    {{- tpl (toYaml .) $ | nindent 4 }}
  {{- end }}
  containers:
    - name: exporter
      image: {{ include "requence-exporter.image" . | quote }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      args:
        - run
        - --listen=0.0.0.0:9721
        - --state-file={{ include "requence-exporter.stateDir" . }}/state.json
        {{- if include "requence-exporter.sharded" . }}
        {{- /* The pod name ends in its ordinal (<statefulset>-<i>) on every Kubernetes version. */}}
        - --shard=$(POD_NAME)/{{ int .Values.sharding.shards }}
        {{- end }}
        {{- if .Values.webConfig.enabled }}
        - --web.config.file={{ include "requence-exporter.webConfigFile" . }}
        {{- end }}
        {{- range .Values.extraArgs }}
        - {{ include "requence-exporter.scalar" . | quote }}
        {{- end }}
      env:
        {{- if include "requence-exporter.sharded" . }}
        - name: POD_NAME
          valueFrom:
            fieldRef:
              fieldPath: metadata.name
        {{- end }}
        {{- if or .Values.requence.existingSecret .Values.requence.accessToken }}
        - name: REQUENCE_ACCESS_TOKEN
          valueFrom:
            secretKeyRef:
              {{- if .Values.requence.existingSecret }}
              name: {{ .Values.requence.existingSecret | quote }}
              key: {{ .Values.requence.existingSecretKey | quote }}
              {{- else }}
              name: {{ include "requence-exporter.fullname" . }}
              key: access-token
              {{- end }}
        {{- end }}
        {{- range $flag, $value := .Values.config }}
        {{- if not (kindIs "invalid" $value) }}
        - name: {{ printf "REQUENCE_EXPORTER_%s" ($flag | upper | replace "-" "_" | replace "." "_") }}
          value: {{ include "requence-exporter.scalar" $value | quote }}
        {{- end }}
        {{- end }}
        {{- if .Values.otlp.endpoint }}
        - name: OTEL_EXPORTER_OTLP_ENDPOINT
          value: {{ .Values.otlp.endpoint | quote }}
        - name: OTEL_EXPORTER_OTLP_PROTOCOL
          value: {{ .Values.otlp.protocol | quote }}
        {{- end }}
        - name: OTEL_SERVICE_NAME
          value: {{ .Values.otlp.serviceName | quote }}
        {{- if or .Values.otlp.headersSecret.name .Values.otlp.headers }}
        - name: OTEL_EXPORTER_OTLP_HEADERS
          valueFrom:
            secretKeyRef:
              {{- if .Values.otlp.headersSecret.name }}
              name: {{ .Values.otlp.headersSecret.name | quote }}
              key: {{ .Values.otlp.headersSecret.key | quote }}
              {{- else }}
              name: {{ include "requence-exporter.fullname" . }}
              key: otlp-headers
              {{- end }}
        {{- end }}
        {{- with .Values.otlp.resourceAttributes }}
        - name: OTEL_RESOURCE_ATTRIBUTES
          value: {{ $pairs := list }}{{ range $k, $v := . }}{{ $pairs = append $pairs (printf "%s=%s" $k (include "requence-exporter.scalar" $v)) }}{{ end }}{{ join "," $pairs | quote }}
        {{- end }}
        {{- with .Values.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      {{- with .Values.extraEnvFrom }}
      envFrom:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      ports:
        - name: http-metrics
          containerPort: 9721
          protocol: TCP
      livenessProbe:
        httpGet:
          path: /healthz
          port: http-metrics
          {{- if include "requence-exporter.webTLS" . }}
          scheme: HTTPS
          {{- end }}
        {{- toYaml .Values.livenessProbe | nindent 8 }}
      readinessProbe:
        httpGet:
          path: /readyz
          port: http-metrics
          {{- if include "requence-exporter.webTLS" . }}
          scheme: HTTPS
          {{- end }}
        {{- toYaml .Values.readinessProbe | nindent 8 }}
      {{- if .Values.startupProbe.enabled }}
      startupProbe:
        httpGet:
          path: /healthz
          port: http-metrics
          {{- if include "requence-exporter.webTLS" . }}
          scheme: HTTPS
          {{- end }}
        {{- toYaml (omit .Values.startupProbe "enabled") | nindent 8 }}
      {{- end }}
      securityContext:
        {{- toYaml .Values.securityContext | nindent 8 }}
      resources:
        {{- toYaml .Values.resources | nindent 8 }}
      volumeMounts:
        - name: state
          mountPath: {{ include "requence-exporter.stateDir" . }}
        - name: tmp
          mountPath: /tmp
        {{- if .Values.webConfig.enabled }}
        - name: web-config
          mountPath: {{ include "requence-exporter.webConfigDir" . }}
          readOnly: true
        {{- end }}
        {{- with .Values.extraVolumeMounts }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    {{- /* Sidecars run beside the exporter, after it in the list. */}}
    {{- with .Values.extraContainers }}
    {{- tpl (toYaml .) $ | nindent 4 }}
    {{- end }}
  volumes:
    {{- /* A sharded StatefulSet with persistence gets "state" from its claim template. */}}
    {{- if not (and (include "requence-exporter.sharded" .) .Values.persistence.enabled) }}
    - name: state
      {{- if .Values.persistence.enabled }}
      persistentVolumeClaim:
        claimName: {{ default (include "requence-exporter.fullname" .) .Values.persistence.existingClaim }}
      {{- else }}
      emptyDir:
        {{- with .Values.persistence.emptyDir.sizeLimit }}
        sizeLimit: {{ . | quote }}
        {{- end }}
      {{- end }}
    {{- end }}
    - name: tmp
      emptyDir:
        sizeLimit: 64Mi
    {{- if .Values.webConfig.enabled }}
    - name: web-config
      projected:
        # 0440: readable by the pod's group (fsGroup), not by other users.
        defaultMode: 288
        sources:
          - secret:
              name: {{ default (printf "%s-web-config" (include "requence-exporter.fullname" .)) .Values.webConfig.existingSecret | quote }}
          {{- with .Values.webConfig.tlsSecret }}
          - secret:
              name: {{ . | quote }}
          {{- end }}
    {{- end }}
    {{- with .Values.extraVolumes }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with .Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.topologySpreadConstraints }}
  topologySpreadConstraints:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
