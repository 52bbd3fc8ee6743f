package forge.tools_test

import rego.v1

anonymous := {"anonymous": true, "authenticated": false, "claims": {}, "scopes": []}

call(status) := {
	"direction": "client_to_server", "kind": "request", "method": "tools/call",
	"tool": {"name": "fetch", "arguments": {}, "pin_status": status},
}

listing := {
	"direction": "server_to_client", "kind": "response", "method": "tools/list",
	"result": {"tools": [{"name": "echo"}, {"name": "fetch"}]},
}

poisoning(pointer) := {
	"rule_id": "tool-poisoning.hidden-instruction", "category": "poisoning", "severity": "high",
	"confidence": 0.9, "pointer": pointer, "fingerprint": "ab",
}

test_a_call_to_a_changed_tool_is_refused if {
	d := data.forge.decision with input as {"principal": anonymous, "message": call("changed"), "findings": []}
	d.code == "tool_definition_changed"
	not d.allow
}

test_a_call_to_a_pinned_or_unknown_tool_is_not if {
	data.forge.decision.allow with input as {"principal": anonymous, "message": call("pinned"), "findings": []}
	data.forge.decision.allow with input as {"principal": anonymous, "message": call("unknown"), "findings": []}
}

test_a_poisoned_tool_is_hidden_from_the_listing if {
	f := poisoning("/result/tools/1/description")
	d := data.forge.decision with input as {"principal": anonymous, "message": listing, "findings": [f]}
	d.obligations.hide_tools == ["fetch"]
}

test_poisoning_outside_a_tool_definition_hides_nothing if {
	findings := [poisoning("/result/content/0/text"), poisoning("/result/tools"), poisoning("/result/tools/x")]
	d := data.forge.decision with input as {"principal": anonymous, "message": listing, "findings": findings}
	d.obligations.hide_tools == []
}

test_other_findings_on_a_listing_hide_nothing if {
	f := object.union(poisoning("/result/tools/0/description"), {"category": "pii"})
	d := data.forge.decision with input as {"principal": anonymous, "message": listing, "findings": [f]}
	d.obligations.hide_tools == []
}
