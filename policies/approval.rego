# Tools whose definition says they are destructive (annotations.destructiveHint: true)
# need a human's approval: the gateway holds the call until an approver approves exactly
# that call (caller, tool, arguments, bundle revision).
package forge.approval

import rego.v1

default require_approval := {"required": false, "reason": ""}

require_approval := {
	"required": true,
	"reason": sprintf("tool \"%s\" is marked destructive by its server", [input.message.tool.name]),
} if {
	data.forge.lib.tool_call
	input.message.tool.definition.annotations.destructiveHint == true
}
