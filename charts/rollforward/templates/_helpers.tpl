{{/* Names, labels and the decisions several templates share. */}}

{{- define "rollforward.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "rollforward.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "rollforward.selectorLabels" -}}
app.kubernetes.io/name: {{ include "rollforward.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "rollforward.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "rollforward.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: rollforward
{{- end -}}

{{- define "rollforward.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "rollforward.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "rollforward.image" -}}
{{- include "rollforward.imageRef" (dict "image" .Values.image "defaultTag" .Chart.AppVersion) -}}
{{- end -}}

{{/* An image reference from {repository, tag, digest}: the digest wins; an empty tag is
defaultTag (the chart's appVersion), so no image ever floats on `latest`. */}}
{{- define "rollforward.imageRef" -}}
{{- if .image.digest -}}
{{- printf "%s@%s" .image.repository .image.digest -}}
{{- else -}}
{{- printf "%s:%s" .image.repository (default .defaultTag .image.tag) -}}
{{- end -}}
{{- end -}}

{{/* "true" when the replicas elect a leader through kopf peering. */}}
{{- define "rollforward.leaderElection" -}}
{{- if or .Values.leaderElection.enabled (gt (int .Values.replicaCount) 1) -}}true{{- end -}}
{{- end -}}

{{/* "true" in namespaced mode (a list of watched namespaces, Roles instead of a ClusterRole). */}}
{{- define "rollforward.namespaced" -}}
{{- if .Values.watch.namespaces -}}true{{- end -}}
{{- end -}}

{{/*
Resources of files/rbac-rules.yaml that are cluster-scoped. In namespaced mode they go to a
small ClusterRole and everything else to a Role per watched namespace. A test checks this list
against the API server's own `kubectl api-resources --namespaced=false`.
*/}}
{{- define "rollforward.clusterScopedResources" -}}
[customresourcedefinitions, namespaces, clusterkopfpeerings]
{{- end -}}

{{/*
The rules of files/rbac-rules.yaml, split by scope. Call with (dict "root" $ "scope" "cluster")
or (dict "root" $ "scope" "namespaced"); a rule naming resources of both scopes is split in two.
*/}}
{{- define "rollforward.rulesOfScope" -}}
{{- $clusterScoped := include "rollforward.clusterScopedResources" .root | fromYamlArray -}}
{{- $wanted := list -}}
{{- range $rule := .root.Files.Get "files/rbac-rules.yaml" | fromYamlArray -}}
{{- $resources := list -}}
{{- range $resource := $rule.resources -}}
{{- if eq (has $resource $clusterScoped) (eq $.scope "cluster") -}}
{{- $resources = append $resources $resource -}}
{{- end -}}
{{- end -}}
{{- if $resources -}}
{{- $wanted = append $wanted (merge (dict "resources" $resources) (omit $rule "resources")) -}}
{{- end -}}
{{- end -}}
{{- toYaml $wanted -}}
{{- end -}}
