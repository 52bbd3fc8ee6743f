package forge.decision_test

import rego.v1

import data.forge

anonymous := {"anonymous": true, "authenticated": false, "claims": {}, "scopes": []}

call(tool, arguments) := {
	"direction": "client_to_server", "kind": "request", "method": "tools/call",
	"tool": {"name": tool, "arguments": arguments, "pin_status": "unknown"},
}

test_a_plain_call_is_allowed_with_no_obligations if {
	d := forge.decision with input as {"principal": anonymous, "message": call("echo", {"message": "hi"}), "findings": []}
	d == {
		"allow": true, "code": "allowed", "reason": "",
		"obligations": {"require_approval": {"required": false, "reason": ""}, "redact": []},
	}
}

test_a_plain_result_is_allowed_with_no_obligations if {
	response := {"direction": "server_to_client", "kind": "response", "method": "tools/call", "result": {"content": []}}
	d := forge.decision with input as {"principal": anonymous, "message": response, "findings": []}
	d == {
		"allow": true, "code": "allowed", "reason": "",
		"obligations": {"redact": [], "hide_tools": [], "annotations": {}},
	}
}

test_every_denial_is_reported_and_the_first_code_names_the_decision if {
	secret := {"rule_id": "secret.aws", "category": "secret", "severity": "critical", "confidence": 1, "pointer": "/params/arguments/path", "fingerprint": "x"}
	d := forge.decision with input as {
		"principal": anonymous,
		"message": call("read_file", {"path": "/etc/shadow"}),
		"findings": [secret],
	}
	not d.allow
	d.code == "path_not_allowed"
	d.obligations.annotations.denials == ["path_not_allowed", "secret_detected"]
	contains(d.reason, "/etc/shadow")
	contains(d.reason, "secret.aws")
}

test_messages_other_than_calls_are_allowed if {
	initialize := {"direction": "client_to_server", "kind": "request", "method": "initialize"}
	forge.decision.allow with input as {"principal": anonymous, "message": initialize, "findings": []}
}

test_a_server_request_is_allowed_and_annotated if {
	sampling := {"direction": "server_to_client", "kind": "request", "method": "sampling/createMessage"}
	# Pinned, so the test holds in a deployment that blocks some server requests.
	d := forge.decision with input as {"principal": anonymous, "message": sampling, "findings": []}
		with data.forge.config.blocked_server_requests as []
	d.allow
	d.obligations.annotations == {"server_requests": ["sampling/createMessage"]}
}

test_a_destructive_call_is_allowed_only_with_approval if {
	message := object.union(call("drop_table", {}), {"tool": {"definition": {"annotations": {"destructiveHint": true}}}})
	d := forge.decision with input as {"principal": anonymous, "message": message, "findings": []}
	d.allow
	d.obligations.require_approval.required
}

reader := {
	"anonymous": false, "authenticated": true, "issuer": "https://idp.example", "subject": "rita",
	"claims": {}, "scopes": ["mcp:tools:read"],
}

test_a_missing_scope_names_the_scopes_that_would_allow_the_call if {
	d := forge.decision with input as {"principal": reader, "message": call("write_file", {}), "findings": []}
		with data.forge.config.scope_step_up as true
	not d.allow
	d.code == "insufficient_scope"
	d.required_scopes == ["mcp:tools"]
}

test_no_scopes_are_named_when_more_scope_would_not_help if {
	message := call("write_file", {"path": "/etc/passwd"})
	d := forge.decision with input as {"principal": reader, "message": message, "findings": []}
		with data.forge.config.scope_step_up as true
	not d.allow
	{"insufficient_scope", "path_not_allowed"} == {c | some c in d.obligations.annotations.denials}
	d.required_scopes == []
}

# Each direction is asked only its own questions (decision.rego); what each asks still decides.
test_a_refused_server_request_is_refused_by_the_decision if {
	sampling := {"direction": "server_to_client", "kind": "request", "method": "sampling/createMessage"}
	d := forge.decision with input as {"principal": anonymous, "message": sampling, "findings": []}
		with data.forge.config.blocked_server_requests as ["sampling/createMessage"]
	not d.allow
	d.code == "server_request_blocked"
}

test_a_secret_in_a_result_is_refused_by_the_decision if {
	secret := {"rule_id": "secret.aws", "category": "secret", "severity": "critical", "confidence": 1, "pointer": "/result/content/0/text", "fingerprint": "x"}
	response := {"direction": "server_to_client", "kind": "response", "method": "tools/call", "result": {"content": []}}
	d := forge.decision with input as {"principal": anonymous, "message": response, "findings": [secret]}
	not d.allow
	d.code == "secret_detected"
}

test_a_result_is_not_refused_for_its_calls_tool if {
	# The call was judged on its way in; access rules do not apply to the answer.
	response := {
		"direction": "server_to_client", "kind": "response", "method": "tools/call",
		"tool": {"name": "delete_file", "arguments": {"path": "/etc/passwd"}, "pin_status": "changed"},
		"result": {"content": []},
	}
	d := forge.decision with input as {"principal": reader, "message": response, "findings": []}
	d.allow
}

test_a_message_without_a_direction_gets_no_decision if {
	# The gateway always sets one; without it nothing is decided, and the gateway refuses.
	message := object.remove(call("echo", {}), ["direction"])
	not forge.decision with input as {"principal": anonymous, "message": message, "findings": []}
}
