output "release_name" {
  description = "Name of the Helm release."
  value       = helm_release.forge.name
}

output "namespace" {
  description = "Namespace of the injector."
  value       = helm_release.forge.namespace
}

output "chart_version" {
  description = "Version of the deployed chart."
  value       = helm_release.forge.version
}

output "release_status" {
  description = "Status of the Helm release (deployed when the injector is up)."
  value       = helm_release.forge.status
}

output "mutating_webhook_configuration" {
  description = "Name of the MutatingWebhookConfiguration (kubectl get mutatingwebhookconfiguration NAME)."
  value       = strcontains(var.release_name, "forge") ? var.release_name : "${var.release_name}-forge"
}

output "signing_key_secrets" {
  description = "The signing key Secret in each target namespace, as namespace/name."
  value       = [for s in kubernetes_secret_v1.signing_key : "${s.metadata[0].namespace}/${s.metadata[0].name}"]
}

output "injected_namespaces" {
  description = "Namespaces whose pods may be injected; label them forge.dev/inject=enabled or label pods forge.dev/inject=true."
  value       = var.target_namespaces
}
