# Production on EKS: the security-group rules and the KMS-protected signing key secret
# (modules/aws-eks), then Forge with a pinned image, three injector replicas, cert-manager
# certificates, your own policy bundle and Prometheus Operator monitoring. The signing key's
# value is put into the secret out of band (see modules/aws-eks/main.tf), never by Terraform;
# Terraform does read it to write the Kubernetes Secrets, so keep the state encrypted
# (e.g. an S3 backend with a KMS key) and readable only by the deploying role.

terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.40.0, < 7.0.0"
    }
  }
}

variable "region" {
  description = "AWS region of the cluster."
  type        = string
}

variable "cluster_name" {
  description = "Name of the EKS cluster."
  type        = string
}

variable "node_security_group_id" {
  description = "Security group of the nodes that run MCP servers."
  type        = string
}

variable "mcp_client_cidrs" {
  description = "Subnets of the MCP clients (agents) that may call the servers."
  type        = list(string)
}

variable "deployer_role_arn" {
  description = "IAM role that runs this Terraform: reads the signing key."
  type        = string
}

variable "security_admin_role_arn" {
  description = "IAM role that administers the KMS key."
  type        = string
}

variable "image_digest" {
  description = "Digest of the Forge image to run (sha256:...)."
  type        = string
}

provider "aws" {
  region = var.region
}

data "aws_eks_cluster" "this" {
  name = var.cluster_name
}

data "aws_eks_cluster_auth" "this" {
  name = var.cluster_name
}

provider "kubernetes" {
  host                   = data.aws_eks_cluster.this.endpoint
  cluster_ca_certificate = base64decode(data.aws_eks_cluster.this.certificate_authority[0].data)
  token                  = data.aws_eks_cluster_auth.this.token
}

# Helm provider 3.x: kubernetes is an attribute, not a block.
provider "helm" {
  kubernetes = {
    host                   = data.aws_eks_cluster.this.endpoint
    cluster_ca_certificate = base64decode(data.aws_eks_cluster.this.certificate_authority[0].data)
    token                  = data.aws_eks_cluster_auth.this.token
  }
}

module "aws" {
  source = "../../modules/aws-eks"

  name                      = "forge-${var.cluster_name}"
  node_security_group_id    = var.node_security_group_id
  cluster_security_group_id = data.aws_eks_cluster.this.vpc_config[0].cluster_security_group_id
  mcp_client_cidrs          = var.mcp_client_cidrs
  signing_key_readers       = [var.deployer_role_arn]
  key_administrators        = [var.security_admin_role_arn]
  tags                      = { "app.kubernetes.io/part-of" = "forge" }
}

module "forge" {
  source = "../.."

  image_repository      = "123456789012.dkr.ecr.${var.region}.amazonaws.com/forge"
  image_digest          = var.image_digest
  injector_replicas     = 3
  target_namespaces     = ["mcp-prod", "mcp-tools"]
  signing_key_secret_id = module.aws.signing_key_secret_arn
  cert_manager          = true
  sidecar_tls = {
    cert_manager_issuer      = "mcp-workloads"
    cert_manager_issuer_kind = "ClusterIssuer"
  }
  policy_config_map = "mcp-policy"
  monitoring = {
    enabled = true
    labels  = { release = "kube-prometheus-stack" }
  }
  extra_values = {
    injector = {
      antiAffinity = "hard"
    }
  }
}

output "signing_key_secret_arn" {
  description = "Put the signing key here: aws secretsmanager put-secret-value --secret-id ARN --secret-string file://key.pem"
  value       = module.aws.signing_key_secret_arn
}

output "signing_key_secrets" {
  description = "Kubernetes Secrets holding the signing key."
  value       = module.forge.signing_key_secrets
}
