package forge.access_test

import rego.v1

import data.forge.access

call(tool) := {"direction": "client_to_server", "kind": "request", "method": "tools/call", "tool": {"name": tool, "arguments": {}}}

anonymous := {"anonymous": true, "authenticated": false, "scopes": [], "claims": {}}

user(claims, scopes) := {"anonymous": false, "authenticated": true, "subject": "alice", "scopes": scopes, "claims": claims}

test_anonymous_callers_may_call_any_tool_by_default if {
	count(access.deny) == 0 with input as {"principal": anonymous, "message": call("get-env")}
}

test_anonymous_callers_get_nothing_when_not_allowed if {
	denials := access.deny with input as {"principal": anonymous, "message": call("echo")}
		with data.forge.config.anonymous_allowed as false
	some d in denials
	d.code == "tool_not_allowed"
	contains(d.reason, "anonymous callers")
}

test_a_role_limits_tools_by_pattern if {
	denials := access.deny with input as {"principal": user({"roles": ["viewer"]}, []), "message": call("delete_file")}
	some d in denials
	d == {"code": "tool_not_allowed", "reason": "tool \"delete_file\" is not allowed for caller \"alice\""}
}

test_a_role_allows_its_tools if {
	count(access.deny) == 0 with input as {"principal": user({"roles": ["viewer"]}, []), "message": call("read_file")}
}

test_a_scope_allows_its_tools if {
	count(access.deny) == 0 with input as {"principal": user({}, ["mcp:tools:read"]), "message": call("list_tables")}
}

test_a_scope_does_not_allow_other_tools if {
	count(access.deny) == 1 with input as {"principal": user({}, ["mcp:tools:read"]), "message": call("write_file")}
}

test_an_authenticated_caller_without_roles_gets_no_tools if {
	count(access.deny) == 1 with input as {"principal": user({}, []), "message": call("echo")}
}

test_a_call_without_a_tool_name_is_refused if {
	message := object.remove(call("x"), ["tool"])
	denials := access.deny with input as {"principal": anonymous, "message": message}
	some d in denials
	d.code == "malformed_tool_call"
}

test_other_methods_are_not_checked_here if {
	message := {"direction": "client_to_server", "kind": "request", "method": "resources/read", "resource": {"uri": "file:///x"}}
	count(access.deny) == 0 with input as {"principal": user({}, []), "message": message}
}

listing(tools) := {
	"direction": "server_to_client", "kind": "response", "method": "tools/list",
	"result": {"tools": [{"name": t} | some t in tools]},
}

test_tools_list_hides_tools_the_caller_may_not_use if {
	hidden := access.hidden_tools with input as {
		"principal": user({"roles": ["viewer"]}, []),
		"message": listing(["get-env", "echo", "write_file", "delete_file"]),
	}
	hidden == ["delete_file", "write_file"]
}

test_tools_list_hides_nothing_from_a_caller_who_may_use_everything if {
	hidden := access.hidden_tools with input as {"principal": anonymous, "message": listing(["get-env", "write_file"])}
	hidden == []
}

test_only_listing_results_are_filtered if {
	message := object.union(listing(["write_file"]), {"method": "resources/list"})
	hidden := access.hidden_tools with input as {"principal": user({}, []), "message": message}
	hidden == []
}

test_suffix_and_infix_patterns_allow_matching_tools if {
	roles := {"auditor": ["*_report", "*audit*"]}
	count(access.deny) == 0 with input as {"principal": user({"roles": ["auditor"]}, []), "message": call("weekly_report")}
		with data.forge.roles as roles
	count(access.deny) == 0 with input as {"principal": user({"roles": ["auditor"]}, []), "message": call("run_audit_now")}
		with data.forge.roles as roles
}

test_suffix_and_infix_patterns_refuse_near_misses if {
	roles := {"auditor": ["*_report", "*audit*"]}
	count(access.deny) == 1 with input as {"principal": user({"roles": ["auditor"]}, []), "message": call("report_writer")}
		with data.forge.roles as roles
	count(access.deny) == 1 with input as {"principal": user({"roles": ["auditor"]}, []), "message": call("aud_it")}
		with data.forge.roles as roles
}

token_user(claims, scopes) := object.union(user(claims, scopes), {"issuer": "https://idp.example"})

test_a_token_lacking_the_scope_is_told_which_scopes_allow_the_tool if {
	denials := access.deny with input as {"principal": token_user({}, ["mcp:tools:read"]), "message": call("write_file")}
		with data.forge.config.scope_step_up as true
	denials == {{
		"code": "insufficient_scope",
		"reason": "tool \"write_file\" needs a token with one of the scopes [\"mcp:tools\"]",
		"required_scopes": ["mcp:tools"],
	}}
}

test_a_token_with_the_scope_is_not_asked_for_more if {
	count(access.deny) == 0 with input as {"principal": token_user({}, ["mcp:tools:read"]), "message": call("read_file")}
		with data.forge.config.scope_step_up as true
}

test_without_step_up_a_missing_scope_is_simply_not_allowed if {
	denials := access.deny with input as {"principal": token_user({}, ["mcp:tools:read"]), "message": call("write_file")}
	{d.code | some d in denials} == {"tool_not_allowed"}
}

test_no_scope_allows_the_tool_so_it_is_simply_not_allowed if {
	denials := access.deny with input as {"principal": token_user({}, []), "message": call("write_file")}
		with data.forge.scopes as {"mcp:tools:read": ["read_*"]}
		with data.forge.config.scope_step_up as true
	{d.code | some d in denials} == {"tool_not_allowed"}
}

test_callers_without_a_token_are_never_asked_for_scopes if {
	denials := access.deny with input as {"principal": user({}, []), "message": call("write_file")}
		with data.forge.config.anonymous_allowed as false
		with data.forge.config.scope_step_up as true
	{d.code | some d in denials} == {"tool_not_allowed"}
}
