package forge.approval_test

import rego.v1

import data.forge.approval

call(annotations) := {
	"direction": "client_to_server", "kind": "request", "method": "tools/call",
	"tool": {"name": "drop_table", "arguments": {}, "definition": {"name": "drop_table", "annotations": annotations}},
}

test_a_destructive_tool_needs_approval if {
	a := approval.require_approval with input.message as call({"destructiveHint": true})
	a.required
	contains(a.reason, "drop_table")
}

test_a_tool_marked_not_destructive_does_not if {
	a := approval.require_approval with input.message as call({"destructiveHint": false, "readOnlyHint": false})
	not a.required
}

test_a_read_only_tool_does_not if {
	a := approval.require_approval with input.message as call({"readOnlyHint": true})
	not a.required
}

test_a_tool_without_a_known_definition_does_not if {
	message := object.remove(call({}), ["tool"])
	a := approval.require_approval with input.message as object.union(message, {"tool": {"name": "drop_table", "arguments": {}}})
	not a.required
}

test_only_calls_need_approval_not_their_results if {
	message := object.union(call({"destructiveHint": true}), {"direction": "server_to_client", "kind": "response"})
	a := approval.require_approval with input.message as message
	not a.required
}
