# Which tools a caller may use: by role, by OAuth scope, or — when the gateway runs
# without authentication and config.anonymous_allowed is true — as an anonymous caller.
# A tools/call of another tool is refused, and tools/list results hide those tools.
package forge.access

import rego.v1

# The tool-name patterns this caller may use.
patterns contains pattern if {
	input.principal.anonymous
	data.forge.config.anonymous_allowed
	some pattern in data.forge.anonymous_tools
}

patterns contains pattern if {
	some role in data.forge.lib.roles
	some pattern in object.get(data.forge.roles, role, [])
}

patterns contains pattern if {
	not input.principal.anonymous
	some scope in input.principal.scopes
	some pattern in object.get(data.forge.scopes, scope, [])
}

# The patterns by kind, worked out once per message rather than once per tool.
exact contains pattern if {
	some pattern in patterns
	not contains(pattern, "*")
}

prefixes contains trim_suffix(pattern, "*") if {
	some pattern in patterns
	endswith(pattern, "*")
	not startswith(pattern, "*")
}

suffixes contains trim_prefix(pattern, "*") if {
	some pattern in patterns
	startswith(pattern, "*")
	not endswith(pattern, "*")
}

infixes contains trim(pattern, "*") if {
	some pattern in patterns
	startswith(pattern, "*")
	endswith(pattern, "*")
}

# The common case first: a gateway without authentication allowing every tool decides
# here, without working out any patterns.
tool_allowed(_) if {
	input.principal.anonymous
	data.forge.config.anonymous_allowed
	"*" in data.forge.anonymous_tools
}

tool_allowed(_) if "*" in patterns

tool_allowed(name) if name in exact

tool_allowed(name) if {
	some prefix in prefixes
	startswith(name, prefix)
}

tool_allowed(name) if {
	some suffix in suffixes
	endswith(name, suffix)
}

tool_allowed(name) if {
	some infix in infixes
	contains(name, infix)
}

# The tool a call names, when the caller may not use it (one at most). A rule, not a test
# in each denial below: a rule's value is worked out once per message, a function's on
# every use.
refused_tools contains input.message.tool.name if {
	data.forge.lib.tool_call
	not tool_allowed(input.message.tool.name)
}

deny contains {"code": "tool_not_allowed", "reason": sprintf("tool \"%s\" is not allowed for %s", [name, caller])} if {
	some name in refused_tools
	count(scopes_allowing(name)) == 0
}

# With config.scope_step_up, a token that lacks a scope which would allow the tool is told
# which scopes would: the gateway answers 403 insufficient_scope naming them, and the
# client may ask its authorization server for a token with more scope (step-up).
deny contains {
	"code": "insufficient_scope",
	"reason": sprintf("tool \"%s\" needs a token with one of the scopes %v", [name, required]),
	"required_scopes": required,
} if {
	some name in refused_tools
	required := sort(scopes_allowing(name))
	count(required) > 0
}

# Only a token (it names its issuer) can be exchanged for one with more scope.
scopes_allowing(name) := {scope |
	data.forge.config.scope_step_up
	input.principal.issuer
	some scope, scope_patterns in data.forge.scopes
	data.forge.lib.matches_any(scope_patterns, name)
}

# A call whose tool name is missing or not a string names nothing policy could check.
deny contains {"code": "malformed_tool_call", "reason": "tools/call needs a string `name`"} if {
	data.forge.lib.tool_call
	not input.message.tool
}

caller := "anonymous callers" if input.principal.anonymous

caller := sprintf("caller \"%s\"", [id]) if {
	not input.principal.anonymous
	id := object.get(input.principal, "subject", object.get(input.principal, ["mtls", "spiffe_id"], "unknown"))
}

# Listing results (tools/list, and server/discover in 2026-07-28) show only usable tools.
default hidden_tools := []

hidden_tools := sort([tool.name | some tool in input.message.result.tools; not tool_allowed(tool.name)]) if {
	input.message.kind == "response"
	input.message.method in {"tools/list", "server/discover"}
	input.message.direction == "server_to_client"
	not "*" in patterns
}
