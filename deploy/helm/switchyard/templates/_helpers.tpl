{{/*
Names and labels in openwhisk-deploy-kube's scheme: objects are named <release>-<component>, and
carry its boilerplate labels plus `name`, which the selectors use.
*/}}
{{- define "switchyard.fullname" -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "switchyard.labels" -}}
name: {{ include "switchyard.fullname" . }}
heritage: {{ .Release.Service | quote }}
release: {{ .Release.Name | quote }}
chart: "{{ .Chart.Name }}-{{ .Chart.Version }}"
app: {{ include "switchyard.fullname" . }}
{{- end -}}

{{/* The labels with more of the values' over them (a Prometheus Operator's `release` selector). */}}
{{- define "switchyard.labelsWith" -}}
{{- mergeOverwrite (include "switchyard.labels" .root | fromYaml) (.extra | default dict) | toYaml -}}
{{- end -}}

{{- define "switchyard.selector" -}}
name: {{ include "switchyard.fullname" . }}
{{- end -}}

{{/* The namespace a pool's controllers live in. */}}
{{- define "switchyard.poolNamespace" -}}
{{- .pool.namespace | default .root.Release.Namespace -}}
{{- end -}}

{{/* The headless Service over one pool's controller pods. */}}
{{- define "switchyard.poolService" -}}
{{- printf "%s-%s-controllers" .root.Release.Name .name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* A pool's members: the given list, else its headless Service, else the release's Service. */}}
{{- define "switchyard.poolMembers" -}}
{{- if .pool.members -}}
{{- toJson .pool.members -}}
{{- else -}}
{{- $host := printf "%s-controller" .pool.release -}}
{{- if .root.Values.pools.headlessServices -}}
{{- $host = include "switchyard.poolService" . -}}
{{- end -}}
{{- list (printf "%s.%s.svc.%s:%d" $host (include "switchyard.poolNamespace" .) .root.Values.k8s.domain (int .pool.port)) | toJson -}}
{{- end -}}
{{- end -}}

{{/*
Seconds the kubelet waits after SIGTERM: switchyard's own shutdown (keep serving while endpoints
are removed, drain requests in flight, flush records) plus 5 s of margin.
*/}}
{{- define "switchyard.terminationGracePeriodSeconds" -}}
{{- $s := .Values.config.shutdown | default dict -}}
{{- add ($s.grace_period_s | default 5) ($s.drain_timeout_s | default 65) ($s.flush_timeout_s | default 5) 5 -}}
{{- end -}}

{{/*
A TOML table from a dict: scalars and lists as JSON (which TOML reads the same way for strings,
numbers, booleans and arrays of them; Helm keeps numbers as floats, JSON writes whole ones without
a fraction), then sub-tables and arrays of tables under their dotted path.
*/}}
{{- define "switchyard.tomlKey" -}}
{{- if regexMatch "^[A-Za-z0-9_-]+$" . }}{{ . }}{{ else }}{{ toJson . }}{{ end -}}
{{- end -}}

{{- define "switchyard.toml" -}}
{{- $tables := list -}}
{{- $scalars := dict -}}
{{- range $k, $v := .table -}}
{{- if or (kindIs "map" $v) (and (kindIs "slice" $v) $v (kindIs "map" (first $v))) -}}
{{- $tables = append $tables $k -}}
{{- else if not (kindIs "invalid" $v) -}}
{{- $_ := set $scalars $k $v -}}
{{- end -}}
{{- end -}}
{{- if and .header (or $scalars (hasPrefix "[[" .header)) }}

{{ .header }}
{{- end -}}
{{- range $k, $v := $scalars }}
{{ include "switchyard.tomlKey" $k }} = {{ toJson $v }}
{{- end -}}
{{- range $k := $tables -}}
{{- $v := get $.table $k -}}
{{- $path := include "switchyard.tomlKey" $k -}}
{{- if $.prefix }}{{ $path = printf "%s.%s" $.prefix $path }}{{ end -}}
{{- if kindIs "map" $v -}}
{{- include "switchyard.toml" (dict "table" $v "prefix" $path "header" (printf "[%s]" $path)) -}}
{{- else -}}
{{- range $item := $v -}}
{{- include "switchyard.toml" (dict "table" $item "prefix" $path "header" (printf "[[%s]]" $path)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Where the Kafka secrets are mounted. */}}
{{- define "switchyard.kafkaTlsDir" -}}/etc/switchyard/kafka-tls{{- end -}}
{{- define "switchyard.kafkaSaslDir" -}}/etc/switchyard/kafka-sasl{{- end -}}
{{- define "switchyard.signKeyDir" -}}/etc/switchyard/sign-key{{- end -}}

{{/* switchyard.toml: `config` from the values, with what the chart decides set over it. */}}
{{- define "switchyard.config" -}}
{{- $cfg := deepCopy (.Values.config | default dict) -}}
{{- $_ := set $cfg "listen" (printf "0.0.0.0:%d" (int .Values.service.port)) -}}
{{- $_ = set $cfg "rules" "/etc/switchyard/rules/rules.toml" -}}
{{- $admin := get $cfg "admin" | default dict -}}
{{- $_ = set $admin "listen" (printf "0.0.0.0:%d" (int .Values.service.adminPort)) -}}
{{- $_ = set $cfg "admin" $admin -}}
{{- $legacy := dict "members" (include "switchyard.poolMembers" (dict "root" . "name" "legacy" "pool" .Values.pools.legacy) | fromJsonArray) -}}
{{- $scheduler := dict "members" (include "switchyard.poolMembers" (dict "root" . "name" "scheduler" "pool" .Values.pools.scheduler) | fromJsonArray) -}}
{{- $_ = set $cfg "pools" (dict "legacy" $legacy "scheduler" $scheduler) -}}
{{- $shadow := get $cfg "shadow" | default dict -}}
{{- $_ = set $shadow "records_file" "/var/lib/switchyard/shadow-records.jsonl" -}}
{{- $_ = set $cfg "shadow" $shadow -}}
{{- if .Values.kafka.enabled -}}
{{- $k := get $cfg "kafka" | default dict -}}
{{- $_ = set $k "brokers" .Values.kafka.brokers -}}
{{- $_ = set $k "records_topic" .Values.kafka.recordsTopic -}}
{{- $_ = set $k "rules_topic" .Values.kafka.rulesTopic -}}
{{- with .Values.kafka.rulesVerifyKeys }}{{ $_ = set $k "rules_verify_keys" . }}{{ end -}}
{{- if .Values.kafka.rulesSignKeySecret -}}
{{- $_ = set $k "rules_sign_key" (printf "%s/%s" (include "switchyard.signKeyDir" .) .Values.kafka.rulesSignKeyKey) -}}
{{- end -}}
{{- with .Values.kafka.tls.existingSecret -}}
{{- $dir := include "switchyard.kafkaTlsDir" $ -}}
{{- $tls := dict "ca_file" (printf "%s/ca.crt" $dir) -}}
{{- if $.Values.kafka.tls.clientCertificate -}}
{{- $_ = set $tls "cert_file" (printf "%s/tls.crt" $dir) -}}
{{- $_ = set $tls "key_file" (printf "%s/tls.key" $dir) -}}
{{- end -}}
{{- $_ = set $k "tls" $tls -}}
{{- end -}}
{{- with .Values.kafka.sasl.mechanism -}}
{{- $sasl := dict "mechanism" . "username" $.Values.kafka.sasl.username "password_file" (printf "%s/%s" (include "switchyard.kafkaSaslDir" $) $.Values.kafka.sasl.passwordKey) -}}
{{- $_ = set $k "sasl" $sasl -}}
{{- end -}}
{{- $_ = set $cfg "kafka" $k -}}
{{- end -}}
# Rendered by the switchyard chart from its values; `switchyard check --config` validates it.
{{- include "switchyard.toml" (dict "table" $cfg "prefix" "" "header" "") }}
{{ end -}}
