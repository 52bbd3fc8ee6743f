{{/* Names, labels and the values several templates share. */}}

{{- define "forge.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "forge.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "forge.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "forge.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "forge.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "forge.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* The injector pods, for selectors. */}}
{{- define "forge.injectorSelector" -}}
app.kubernetes.io/name: {{ include "forge.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: injector
{{- end -}}

{{- define "forge.image" -}}
{{- $image := .Values.image -}}
{{- if $image.digest -}}
{{- printf "%s@%s" $image.repository $image.digest -}}
{{- else -}}
{{- printf "%s:%s" $image.repository (default .Chart.AppVersion $image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "forge.webhookServiceName" -}}
{{- printf "%s-injector" (include "forge.fullname" .) -}}
{{- end -}}

{{- define "forge.webhookTLSSecret" -}}
{{- printf "%s-injector-tls" (include "forge.fullname" .) -}}
{{- end -}}

{{- define "forge.policyConfigMap" -}}
{{- if .Values.policy.configMap -}}
{{- .Values.policy.configMap -}}
{{- else if and .Values.policy.bundled .Values.targetNamespaces -}}
{{- printf "%s-policy" (include "forge.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* Plugin name -> ConfigMap, as JSON: the operator's, else one per plugin under files/plugins/. */}}
{{- define "forge.pluginConfigMaps" -}}
{{- $maps := dict -}}
{{- if .Values.plugins.configMaps -}}
{{- $maps = .Values.plugins.configMaps -}}
{{- else if and .Values.plugins.bundled .Values.targetNamespaces -}}
{{- range $manifest, $file := .Files.Glob "files/plugins/*/manifest.yaml" -}}
{{- $name := base (dir $manifest) -}}
{{- $_ := set $maps $name (printf "%s-plugin-%s" (include "forge.fullname" $) $name) -}}
{{- end -}}
{{- end -}}
{{- toJson $maps -}}
{{- end -}}

{{- define "forge.signingKeySecret" -}}
{{- if .Values.signingKey.existingSecret -}}
{{- .Values.signingKey.existingSecret -}}
{{- else if .Values.targetNamespaces -}}
{{- printf "%s-signing-key" (include "forge.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* The DNS names the API server reaches the webhook by. */}}
{{- define "forge.webhookDNSNames" -}}
{{- $svc := include "forge.webhookServiceName" . -}}
{{- list $svc (printf "%s.%s" $svc .Release.Namespace) (printf "%s.%s.svc" $svc .Release.Namespace) (printf "%s.%s.svc.cluster.local" $svc .Release.Namespace) | toJson -}}
{{- end -}}
