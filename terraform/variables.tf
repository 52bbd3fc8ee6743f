variable "release_name" {
  description = "Name of the Helm release; resource names start with it."
  type        = string
  default     = "forge"
}

variable "namespace" {
  description = "Namespace of the injector (the webhook server). Created unless create_namespace is false."
  type        = string
  default     = "forge-system"
}

variable "create_namespace" {
  description = "Create var.namespace. Set false when it already exists."
  type        = bool
  default     = true
}

variable "chart_path" {
  description = "The Forge chart: a local path (default: helm/forge of this repository) or a chart reference in a repository."
  type        = string
  default     = null
}

variable "image_repository" {
  description = "Registry and repository of the Forge image built from the repository's Dockerfile."
  type        = string
  default     = "ghcr.io/forge/forge"
}

variable "image_tag" {
  description = "Tag of the Forge image; empty means the chart's appVersion."
  type        = string
  default     = ""
}

variable "image_digest" {
  description = "Digest (sha256:...) pinning the Forge image; empty uses the tag. Recommended in production."
  type        = string
  default     = ""

  validation {
    condition     = var.image_digest == "" || can(regex("^sha256:[a-f0-9]{64}$", var.image_digest))
    error_message = "image_digest must be empty or sha256: followed by 64 hex digits."
  }
}

variable "target_namespaces" {
  description = "Namespaces whose pods may be injected. Each gets the evidence signing key Secret (and the chart's policy ConfigMap unless policy_config_map is set)."
  type        = list(string)

  validation {
    condition     = length(var.target_namespaces) > 0
    error_message = "Name at least one namespace to inject: the signing key Secret is created in each."
  }
}

variable "signing_key_secret_id" {
  description = "AWS Secrets Manager secret (ARN or name) whose value is the Ed25519 evidence signing key, PKCS#8 PEM (openssl genpkey -algorithm ed25519). Its value ends up in the Terraform state: encrypt the state."
  type        = string
}

variable "signing_key_secret_name" {
  description = "Name of the Kubernetes Secret holding the signing key in each target namespace."
  type        = string
  default     = "forge-evidence-signing-key"
}

variable "sidecar_tls" {
  description = "The sidecars' serving certificate: a kubernetes.io/tls Secret name present in every target namespace, or a cert-manager issuer for per-pod certificates (csi.cert-manager.io). Exactly one of secret_name and cert_manager_issuer."
  type = object({
    secret_name              = optional(string, "")
    cert_manager_issuer      = optional(string, "")
    cert_manager_issuer_kind = optional(string, "Issuer")
  })
  default = { secret_name = "forge-sidecar-tls" }

  validation {
    condition     = (var.sidecar_tls.secret_name == "") != (var.sidecar_tls.cert_manager_issuer == "")
    error_message = "Give exactly one of sidecar_tls.secret_name and sidecar_tls.cert_manager_issuer."
  }
}

variable "policy_config_map" {
  description = "A ConfigMap with your own policy bundle, present in every target namespace; empty uses the chart's default bundle."
  type        = string
  default     = ""
}

variable "failure_policy" {
  description = "What the API server does when the webhook is unreachable: Fail (opted-in pods wait for it) or Ignore (they start without Forge)."
  type        = string
  default     = "Fail"

  validation {
    condition     = contains(["Fail", "Ignore"], var.failure_policy)
    error_message = "failure_policy must be Fail or Ignore."
  }
}

variable "injector_replicas" {
  description = "Replicas of the webhook server (at least 2)."
  type        = number
  default     = 2

  validation {
    condition     = var.injector_replicas >= 2
    error_message = "Run at least 2 injector replicas: with failurePolicy Fail a single one blocks pod creation while it restarts."
  }
}

variable "cert_manager" {
  description = "Have cert-manager issue the webhook's serving certificate (it must be installed) instead of the chart."
  type        = bool
  default     = false
}

variable "monitoring" {
  description = "Create the Prometheus Operator ServiceMonitor, PodMonitor and PrometheusRule (the CRDs must exist), with these extra labels for your Prometheus' selectors."
  type = object({
    enabled = optional(bool, false)
    labels  = optional(map(string), {})
  })
  default = {}
}

variable "extra_values" {
  description = "More chart values (see helm/forge/values.yaml), merged over the ones this module sets."
  type        = any
  default     = {}
}

variable "labels" {
  description = "Labels added to the namespace and Secrets this module creates."
  type        = map(string)
  default     = {}
}
