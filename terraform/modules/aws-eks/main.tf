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

resource "aws_vpc_security_group_ingress_rule" "mcp_from_client_cidrs" {
  for_each = toset(var.mcp_client_cidrs)

  security_group_id = var.node_security_group_id
  description       = "MCP clients to the Forge sidecars"
  ip_protocol       = "tcp"
  from_port         = var.mcp_port
  to_port           = var.mcp_port
  cidr_ipv4         = each.value
  tags              = var.tags
}

resource "aws_vpc_security_group_ingress_rule" "mcp_from_client_groups" {
  for_each = toset(var.mcp_client_security_group_ids)

  security_group_id            = var.node_security_group_id
  description                  = "MCP clients to the Forge sidecars"
  ip_protocol                  = "tcp"
  from_port                    = var.mcp_port
  to_port                      = var.mcp_port
  referenced_security_group_id = each.value
  tags                         = var.tags
}

resource "aws_vpc_security_group_ingress_rule" "webhook_from_control_plane" {
  security_group_id            = var.node_security_group_id
  description                  = "EKS API server to the Forge injector webhook"
  ip_protocol                  = "tcp"
  from_port                    = var.webhook_port
  to_port                      = var.webhook_port
  referenced_security_group_id = var.cluster_security_group_id
  tags                         = var.tags
}

resource "aws_vpc_security_group_ingress_rule" "admin_from_nodes" {
  security_group_id            = var.node_security_group_id
  description                  = "Kubelet probes and in-cluster Prometheus to the Forge admin port"
  ip_protocol                  = "tcp"
  from_port                    = var.admin_port
  to_port                      = var.admin_port
  referenced_security_group_id = var.node_security_group_id
  tags                         = var.tags
}

resource "aws_vpc_security_group_ingress_rule" "admin_from_monitoring" {
  for_each = toset(var.monitoring_security_group_ids)

  security_group_id            = var.node_security_group_id
  description                  = "Monitoring to the Forge admin port"
  ip_protocol                  = "tcp"
  from_port                    = var.admin_port
  to_port                      = var.admin_port
  referenced_security_group_id = each.value
  tags                         = var.tags
}
