# The bundle's entrypoint, data.forge.decision: the decision document for one message.
# Each concern lives in its own package and contributes denials (`deny`) or obligations;
# this file only combines them. README.md documents the document.
package forge

import rego.v1

# Each message is asked only what applies to its direction: access, arguments and pins
# judge a client's calls, server_requests what the server asks, findings either way.
# (Every rule of those packages checks the direction itself too; this only spares a
# message rules that cannot apply to it. A message without a direction has no denials
# and so no decision, which the gateway refuses. No `else` here or below: regorus' VM
# runs an else chain slower than exclusive bodies.)
denials := data.forge.access.deny | data.forge.arguments.deny | data.forge.findings.deny | data.forge.tools.deny if {
	input.message.direction == "client_to_server"
}

denials := data.forge.findings.deny | data.forge.server_requests.deny if {
	input.message.direction == "server_to_client"
}

# Any denial refuses the message. Every reason is given, in a stable order; the first
# (by code) names the decision.
decision := {
	"allow": false,
	"code": ordered[0].code,
	"reason": concat("; ", [d.reason | some d in ordered]),
	"required_scopes": required_scopes,
	"obligations": {"annotations": {"denials": [d.code | some d in ordered]}},
} if {
	count(denials) > 0
	ordered := sort([d | some d in denials])
}

decision := {"allow": true, "code": "allowed", "reason": "", "obligations": obligations} if {
	count(denials) == 0
}

# The obligations the gateway carries out for each direction: approval and redaction
# before a client's message goes upstream; redaction and tool hiding on what the server
# sends back. Only those are worked out, so a message pays only for its own.
obligations := {"require_approval": data.forge.approval.require_approval, "redact": data.forge.findings.redact} if {
	input.message.direction == "client_to_server"
}

obligations := {
	"redact": data.forge.findings.redact,
	"hide_tools": data.forge.tools.hidden,
	"annotations": annotations,
} if {
	input.message.direction == "server_to_client"
}

default annotations := {}

annotations := {"server_requests": sort([m | some m in data.forge.server_requests.methods])} if {
	count(data.forge.server_requests.methods) > 0
}

# Scopes that would allow a refused call, when a missing scope is all that refused it.
default required_scopes := []

required_scopes := sort({s | some d in denials; some s in d.required_scopes}) if {
	count(denials) > 0
	every d in denials {
		d.code == "insufficient_scope"
	}
}
