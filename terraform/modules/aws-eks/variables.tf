variable "name" {
  description = "Prefix of the names of the resources created here."
  type        = string
  default     = "forge"
}

variable "node_security_group_id" {
  description = "Security group of the EKS nodes running Forge sidecars (pods share their node's group unless security groups for pods are used)."
  type        = string
}

variable "cluster_security_group_id" {
  description = "Security group of the EKS control plane: the API server calls the injector's webhook from it."
  type        = string
}

variable "mcp_port" {
  description = "Port the sidecars serve MCP on (the chart's sidecar.listenPort)."
  type        = number
  default     = 8443
}

variable "admin_port" {
  description = "The sidecars' and injector's admin port: /healthz, /readyz, /metrics (sidecar.adminPort)."
  type        = number
  default     = 9090
}

variable "webhook_port" {
  description = "The injector's webhook container port (the chart's injector.port)."
  type        = number
  default     = 9443
}

variable "mcp_client_cidrs" {
  description = "IPv4 ranges of the MCP clients allowed to reach the MCP port (e.g. the subnets of your agents or of the load balancer in front)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for c in var.mcp_client_cidrs : can(cidrhost(c, 0)) && c != "0.0.0.0/0"])
    error_message = "mcp_client_cidrs must be IPv4 CIDR blocks, and not 0.0.0.0/0: name the clients."
  }
}

variable "mcp_client_security_group_ids" {
  description = "Security groups of MCP clients (e.g. a load balancer's) allowed to reach the MCP port."
  type        = list(string)
  default     = []
}

variable "monitoring_security_group_ids" {
  description = "Security groups of monitoring outside the node group (e.g. an external Prometheus) allowed to reach the admin port; in-cluster scrapers and kubelet probes come from the nodes themselves."
  type        = list(string)
  default     = []
}

variable "signing_key_readers" {
  description = "IAM principal ARNs allowed to read and decrypt the signing key (the role running Terraform for the Forge module, or an external-secrets controller's role)."
  type        = list(string)
}

variable "key_administrators" {
  description = "IAM principal ARNs that administer the KMS key (never use it)."
  type        = list(string)
}

variable "deletion_window_in_days" {
  description = "Days a scheduled deletion of the KMS key waits (7-30)."
  type        = number
  default     = 30
}

variable "tags" {
  description = "Tags for every resource created here."
  type        = map(string)
  default     = {}
}
