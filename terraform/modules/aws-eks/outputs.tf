output "kms_key_arn" {
  description = "ARN of the KMS key protecting the signing key."
  value       = aws_kms_key.signing_key.arn
}

output "signing_key_secret_arn" {
  description = "ARN of the Secrets Manager secret to put the signing key in; pass it as signing_key_secret_id to the Forge module."
  value       = aws_secretsmanager_secret.signing_key.arn
}

output "security_group_rule_ids" {
  description = "IDs of the node security-group rules created, by purpose (mcp-*, webhook, admin-*)."
  value       = { for key, rule in aws_vpc_security_group_ingress_rule.forge : key => rule.id }
}
