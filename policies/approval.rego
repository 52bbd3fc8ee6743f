# Tools whose definition says they are destructive (annotations.destructiveHint: true)
# need a human's approval. Until Forge collects approvals, that refuses the call with a
# message saying approval is required.
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
