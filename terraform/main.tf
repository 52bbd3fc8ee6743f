# Deploys the Forge chart into an existing cluster. The evidence signing key comes from AWS
# Secrets Manager and is written as a Kubernetes Secret into every target namespace (a pod
# mounts only Secrets of its own namespace); the chart is told to use it instead of
# generating one. The key is therefore in the Terraform state (the data source and the
# Secrets hold it): keep the state encrypted and private, or sync the key in-cluster
# (External Secrets Operator) and pass only its Secret name to the chart instead
# (docs/kubernetes.md). Providers are configured by the caller (see examples/).

locals {
  chart = coalesce(var.chart_path, "${path.module}/../helm/forge")
  common_labels = merge(var.labels, {
    "app.kubernetes.io/managed-by" = "terraform"
    "app.kubernetes.io/part-of"    = "forge"
  })

  values = {
    image = {
      repository = var.image_repository
      tag        = var.image_tag
      digest     = var.image_digest
    }
    injector = { replicas = var.injector_replicas }
    webhook  = { failurePolicy = var.failure_policy }
    certificates = {
      certManager = { enabled = var.cert_manager }
    }
    sidecar = {
      tls = {
        secretName = var.sidecar_tls.secret_name
        certManager = {
          issuer     = var.sidecar_tls.cert_manager_issuer
          issuerKind = var.sidecar_tls.cert_manager_issuer_kind
        }
      }
    }
    policy = {
      configMap = var.policy_config_map
    }
    signingKey = {
      existingSecret = var.signing_key_secret_name
      secretKey      = "signing-key.pem"
    }
    targetNamespaces = var.target_namespaces
    monitoring = {
      serviceMonitor = { enabled = var.monitoring.enabled, labels = var.monitoring.labels }
      podMonitor     = { enabled = var.monitoring.enabled, labels = var.monitoring.labels }
      prometheusRule = { enabled = var.monitoring.enabled, labels = var.monitoring.labels }
    }
  }
}

data "aws_secretsmanager_secret_version" "signing_key" {
  secret_id = var.signing_key_secret_id
}

resource "kubernetes_namespace_v1" "injector" {
  count = var.create_namespace ? 1 : 0

  metadata {
    name   = var.namespace
    labels = local.common_labels
  }
}

resource "kubernetes_secret_v1" "signing_key" {
  for_each = toset(var.target_namespaces)

  metadata {
    name      = var.signing_key_secret_name
    namespace = each.value
    labels    = merge(local.common_labels, { "app.kubernetes.io/component" = "evidence" })
  }

  type = "Opaque"
  data = {
    "signing-key.pem" = data.aws_secretsmanager_secret_version.signing_key.secret_string
  }
}

resource "helm_release" "forge" {
  name      = var.release_name
  namespace = var.namespace
  chart     = local.chart

  # Wait for the injector to be ready: until then, opted-in pods cannot be created.
  wait            = true
  atomic          = true
  cleanup_on_fail = true
  timeout         = 300
  max_history     = 10

  values = [yamlencode(local.values), yamlencode(var.extra_values)]

  depends_on = [kubernetes_namespace_v1.injector, kubernetes_secret_v1.signing_key]
}
