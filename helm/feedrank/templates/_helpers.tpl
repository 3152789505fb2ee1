{{/* Chart name, truncated to the 63 characters Kubernetes names allow. */}}
{{- define "feedrank.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Fully qualified app name: <release>-feedrank unless the release name already contains it. */}}
{{- define "feedrank.fullname" -}}
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

{{- define "feedrank.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "feedrank.selectorLabels" -}}
app.kubernetes.io/name: {{ include "feedrank.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "feedrank.labels" -}}
helm.sh/chart: {{ include "feedrank.chart" . }}
{{ include "feedrank.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: feedrank
{{- end }}

{{- define "feedrank.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "feedrank.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "feedrank.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/*
Environment shared by the worker, the topics job and the batch CronJob: the ConfigMap, then
credentials from existing Secrets (never rendered into the chart).
*/}}
{{- define "feedrank.env" -}}
{{ include "feedrank.kafkaSecretEnv" . }}
{{- if .Values.redis.auth.existingSecret }}
- name: FEEDRANK_REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .Values.redis.auth.existingSecret }}
      key: {{ .Values.redis.auth.passwordKey }}
{{- if .Values.redis.auth.usernameKey }}
- name: FEEDRANK_REDIS_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ .Values.redis.auth.existingSecret }}
      key: {{ .Values.redis.auth.usernameKey }}
{{- end }}
- name: FEEDRANK_REDIS
  value: {{ printf "redis://%s:$(FEEDRANK_REDIS_PASSWORD)@%s:%d/%d" (ternary "$(FEEDRANK_REDIS_USERNAME)" "" (not (empty .Values.redis.auth.usernameKey))) .Values.redis.host (int .Values.redis.port) (int .Values.redis.database) | quote }}
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* SASL credentials from the existing Secret (worker, topics job, batch). */}}
{{- define "feedrank.kafkaSecretEnv" -}}
{{- if .Values.kafka.sasl.enabled }}
- name: FEEDRANK_KAFKA_SASL_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ required "kafka.sasl.existingSecret is required when kafka.sasl.enabled" .Values.kafka.sasl.existingSecret }}
      key: {{ .Values.kafka.sasl.usernameKey }}
- name: FEEDRANK_KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .Values.kafka.sasl.existingSecret }}
      key: {{ .Values.kafka.sasl.passwordKey }}
{{- end }}
{{- end }}

{{/* Volumes for Kafka's CA certificate, shared by every pod that talks to Kafka. */}}
{{- define "feedrank.kafkaTlsVolumeMount" -}}
{{- if .Values.kafka.tls.caSecret }}
- name: kafka-ca
  mountPath: /etc/feedrank/kafka-ca
  readOnly: true
{{- end }}
{{- end }}

{{- define "feedrank.kafkaTlsVolume" -}}
{{- if .Values.kafka.tls.caSecret }}
- name: kafka-ca
  secret:
    secretName: {{ .Values.kafka.tls.caSecret }}
    items:
      - key: {{ .Values.kafka.tls.caKey }}
        path: ca.crt
{{- end }}
{{- end }}

{{/*
Kafka settings as FEEDRANK_* environment (a YAML map): brokers, security, librdkafka
properties. The ConfigMap holds them for the worker; the topics hook Job, which runs before
the ConfigMap exists, gets them inline.
*/}}
{{- define "feedrank.kafkaConfig" -}}
FEEDRANK_BROKERS: {{ required "kafka.brokers is required" .Values.kafka.brokers | quote }}
FEEDRANK_KAFKA_SECURITY_PROTOCOL: {{ .Values.kafka.securityProtocol | quote }}
{{- if .Values.kafka.sasl.enabled }}
FEEDRANK_KAFKA_SASL_MECHANISM: {{ .Values.kafka.sasl.mechanism | quote }}
{{- end }}
{{- if .Values.kafka.tls.caSecret }}
FEEDRANK_KAFKA_SSL_CA_LOCATION: "/etc/feedrank/kafka-ca/ca.crt"
{{- end }}
{{- range $k, $v := .Values.kafka.properties }}
{{ printf "FEEDRANK_KAFKA_%s" ($k | upper | replace "." "_") }}: {{ $v | toString | quote }}
{{- end }}
{{- end }}

{{/* The bundle volume of bundle.source pvc or initContainer (none for image). */}}
{{- define "feedrank.bundleVolume" -}}
{{- if eq .Values.bundle.source "pvc" }}
- name: bundle
  persistentVolumeClaim:
    claimName: {{ required "bundle.pvc.claimName is required when bundle.source is pvc" .Values.bundle.pvc.claimName }}
    readOnly: true
{{- else if eq .Values.bundle.source "initContainer" }}
- name: bundle
  emptyDir:
    sizeLimit: {{ .Values.bundle.initContainer.sizeLimit }}
{{- else if ne .Values.bundle.source "image" }}
{{- fail (printf "bundle.source must be pvc, initContainer or image, got %q" .Values.bundle.source) }}
{{- end }}
{{- end }}
