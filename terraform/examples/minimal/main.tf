# The smallest deployment: Forge into the cluster of the current kubeconfig context, injecting
# one namespace, with the signing key from an existing AWS Secrets Manager secret.

terraform {
  required_version = ">= 1.5.0"
}

variable "signing_key_secret_id" {
  description = "AWS Secrets Manager secret (ARN or name) holding the Ed25519 PKCS#8 PEM signing key."
  type        = string
}

variable "kubeconfig_path" {
  description = "Kubeconfig of the cluster to deploy into."
  type        = string
  default     = "~/.kube/config"
}

provider "aws" {}

provider "kubernetes" {
  config_path = var.kubeconfig_path
}

# Helm provider 3.x: kubernetes is an attribute, not a block.
provider "helm" {
  kubernetes = {
    config_path = var.kubeconfig_path
  }
}

module "forge" {
  source = "../.."

  target_namespaces     = ["mcp"]
  signing_key_secret_id = var.signing_key_secret_id
}

output "namespace" {
  description = "Namespace of the Forge injector."
  value       = module.forge.namespace
}
