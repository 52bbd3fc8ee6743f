output "kms_key_arn" {
  description = "ARN of the KMS key protecting the signing key."
  value       = aws_kms_key.signing_key.arn
}

output "signing_key_secret_arn" {
  description = "ARN of the Secrets Manager secret to put the signing key in; pass it as signing_key_secret_id to the Forge module."
  value       = aws_secretsmanager_secret.signing_key.arn
}

output "security_group_rule_ids" {
  description = "IDs of the node security-group rules created, by purpose."
  value = {
    mcp     = concat([for r in aws_vpc_security_group_ingress_rule.mcp_from_client_cidrs : r.id], [for r in aws_vpc_security_group_ingress_rule.mcp_from_client_groups : r.id])
    webhook = [aws_vpc_security_group_ingress_rule.webhook_from_control_plane.id]
    admin   = concat([aws_vpc_security_group_ingress_rule.admin_from_nodes.id], [for r in aws_vpc_security_group_ingress_rule.admin_from_monitoring : r.id])
  }
}
