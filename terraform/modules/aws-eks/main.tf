# The AWS side of a Forge deployment on EKS: node security-group rules that let only the
# intended clients reach the sidecars' MCP port, only the control plane reach the injector's
# webhook port, and only the nodes themselves (kubelet probes, in-cluster Prometheus) and
# named monitoring reach the admin port; and a KMS key protecting the evidence signing key,
# stored in a Secrets Manager secret whose value is put there out of band:
#   openssl genpkey -algorithm ed25519 -out key.pem
#   aws secretsmanager put-secret-value --secret-id ARN --secret-string file://key.pem

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  account_root = "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"
}

# ---- the evidence signing key

data "aws_iam_policy_document" "signing_key" {
  # In a KMS key policy, resources = ["*"] means this key and nothing else, so these generic
  # IAM checks do not apply:
  # checkov:skip=CKV_AWS_109: A key policy's "*" resource is the key itself.
  # checkov:skip=CKV_AWS_111: A key policy's "*" resource is the key itself.
  # checkov:skip=CKV_AWS_356: A key policy's "*" resource is the key itself.
  # Without this statement the key can become unmanageable; IAM policies of the account
  # still decide who may use it.
  statement {
    sid       = "AccountOwnsTheKey"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = [local.account_root]
    }
  }

  statement {
    sid = "Administer"
    actions = [
      "kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*", "kms:Update*",
      "kms:Revoke*", "kms:Disable*", "kms:Get*", "kms:Delete*", "kms:TagResource",
      "kms:UntagResource", "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion",
    ]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = var.key_administrators
    }
  }

  statement {
    sid       = "DecryptTheSigningKeyThroughSecretsManager"
    actions   = ["kms:Decrypt", "kms:DescribeKey"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = var.signing_key_readers
    }
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["secretsmanager.${data.aws_region.current.name}.amazonaws.com"]
    }
  }
}

data "aws_region" "current" {}

resource "aws_kms_key" "signing_key" {
  description             = "${var.name}: protects the Forge evidence signing key"
  enable_key_rotation     = true
  deletion_window_in_days = var.deletion_window_in_days
  policy                  = data.aws_iam_policy_document.signing_key.json
  tags                    = var.tags
}

resource "aws_kms_alias" "signing_key" {
  name          = "alias/${var.name}-evidence-signing-key"
  target_key_id = aws_kms_key.signing_key.key_id
}

resource "aws_secretsmanager_secret" "signing_key" {
  name        = "${var.name}/evidence-signing-key"
  description = "Ed25519 PKCS#8 PEM key that signs Forge evidence. The value is put here out of band, never by Terraform."
  kms_key_id  = aws_kms_key.signing_key.arn
  # checkov:skip=CKV2_AWS_57: The key's id is recorded in every evidence record it signed; rotating it is a deliberate, announced step (publish the new public key first), not a Lambda on a timer.
  recovery_window_in_days = 30
  tags                    = var.tags
}

data "aws_iam_policy_document" "signing_key_readers" {
  statement {
    sid       = "ReadTheSigningKey"
    actions   = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
    resources = [aws_secretsmanager_secret.signing_key.arn]
    principals {
      type        = "AWS"
      identifiers = var.signing_key_readers
    }
  }
}

resource "aws_secretsmanager_secret_policy" "signing_key" {
  secret_arn = aws_secretsmanager_secret.signing_key.arn
  policy     = data.aws_iam_policy_document.signing_key_readers.json
}

# ---- who reaches which port on the nodes

locals {
  # One ingress rule per entry: the port, and a CIDR or a security group allowed to reach it.
  # Keys are indices, not ids: security-group ids may only be known after apply.
  ingress = merge(
    { for i, cidr in var.mcp_client_cidrs : "mcp-cidr-${i}" => {
      port = var.mcp_port, cidr = cidr, group = null, description = "MCP clients to the Forge sidecars"
    } },
    { for i, group in var.mcp_client_security_group_ids : "mcp-group-${i}" => {
      port = var.mcp_port, cidr = null, group = group, description = "MCP clients to the Forge sidecars"
    } },
    { webhook = {
      port = var.webhook_port, cidr = null, group = var.cluster_security_group_id, description = "EKS API server to the Forge injector webhook"
    } },
    { admin-nodes = {
      port = var.admin_port, cidr = null, group = var.node_security_group_id, description = "Kubelet probes and in-cluster Prometheus to the Forge admin port"
    } },
    { for i, group in var.monitoring_security_group_ids : "admin-monitoring-${i}" => {
      port = var.admin_port, cidr = null, group = group, description = "Monitoring to the Forge admin port"
    } },
  )
}

resource "aws_vpc_security_group_ingress_rule" "forge" {
  for_each = local.ingress

  security_group_id            = var.node_security_group_id
  description                  = each.value.description
  ip_protocol                  = "tcp"
  from_port                    = each.value.port
  to_port                      = each.value.port
  cidr_ipv4                    = each.value.cidr
  referenced_security_group_id = each.value.group
  tags                         = var.tags
}
