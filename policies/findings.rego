# What detector findings mean for a message: a secret refuses it (whichever way it
# travels), and personal data in a tool result is redacted for callers without a
# privileged role.
package forge.findings

import rego.v1

deny contains {
	"code": "secret_detected",
	"reason": sprintf("the %s contains what looks like a secret (%s)", [where, f.rule_id]),
} if {
	some f in input.findings
	f.category == "secret"
	f.confidence >= data.forge.config.secret_min_confidence
}

where := "tool result" if input.message.kind == "response"

where := "message" if input.message.kind != "response"

# Redactions for the gateway to apply, in a stable order.
default redact := []

redact := sort([r | some r in redactions]) if {
	input.message.direction == "server_to_client"
	count(input.findings) > 0
}

redactions contains {"pointer": f.pointer, "span": f.span, "replacement": replacement(f)} if {
	some f in personal_data
	f.span
}

redactions contains {"pointer": f.pointer, "replacement": replacement(f)} if {
	some f in personal_data
	not f.span
}

personal_data contains f if {
	input.message.direction == "server_to_client"
	input.message.kind == "response"
	not privileged
	some f in input.findings
	f.category == "pii"
}

privileged if {
	some role in data.forge.lib.roles
	role in data.forge.config.privileged_roles
}

replacement(f) := sprintf("[REDACTED:%s]", [f.rule_id])
