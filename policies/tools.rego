# Tool definitions: a call to a tool whose definition changed since the gateway pinned it
# (a "rug pull") is refused until someone approves the new definition, and a listed tool
# with a poisoning finding (from a detector, or the gateway's own pin check) is hidden.
package forge.tools

import rego.v1

deny contains {
	"code": "tool_definition_changed",
	"reason": sprintf("the definition of tool %s changed since it was pinned; it must be approved before use", [input.message.tool.name]),
} if {
	input.message.direction == "client_to_server"
	input.message.tool.pin_status == "changed"
}

# Names of listed tools with a poisoning finding anywhere in their definition.
poisoned contains tool.name if {
	input.message.direction == "server_to_client"
	some f in input.findings
	f.category == "poisoning"
	parts := split(f.pointer, "/")
	parts[1] == "result"
	parts[2] == "tools"
	regex.match(`^[0-9]+$`, parts[3])
	tool := input.message.result.tools[to_number(parts[3])]
}

# The tools to hide from a listing: those access control hides, and the poisoned ones.
hidden := data.forge.access.hidden_tools if count(poisoned) == 0

hidden := sort({t | some t in data.forge.access.hidden_tools} | poisoned) if count(poisoned) > 0
