# Helpers the other packages share: who the caller is, what kind of message this is, and
# tool-name patterns.
#
# Policies in this bundle refer to each other by full path (data.forge.lib.roles) rather
# than through `import data.forge.lib`: regorus' VM evaluates an imported package alias
# as a whole document, several microseconds per message, where a full path reads one rule.
package forge.lib

import rego.v1

# The caller's roles: from the JWT claims named in config.role_claims, and from
# data.forge.identities for the token subject, SPIFFE ID or certificate subject.
roles contains role if {
	not input.principal.anonymous
	some claim in data.forge.config.role_claims
	value := object.get(input.principal.claims, split(claim, "."), [])
	some role in words(value)
}

roles contains role if {
	count(data.forge.identities) > 0
	not input.principal.anonymous
	some id in identity_keys
	some role in object.get(data.forge.identities, id, [])
}

identity_keys contains input.principal.subject

identity_keys contains input.principal.mtls.spiffe_id

identity_keys contains input.principal.mtls.subject

# A claim's roles: an array of strings, or one space-separated string.
words(value) := value if is_array(value)

words(value) := [w | some w in split(value, " "); w != ""] if is_string(value)

# A tools/call the client sends (not the response to one, nor a server's request).
tool_call if {
	input.message.method == "tools/call"
	input.message.kind == "request"
	input.message.direction == "client_to_server"
}

# Tool-name patterns: `name`, `prefix*`, `*suffix`, `*infix*` or `*`. Exact names and
# `*` are checked first: they are the common case and cost one lookup.
matches_any(patterns, name) if name in patterns

matches_any(patterns, name) if "*" in patterns

matches_any(patterns, name) if {
	some pattern in patterns
	contains(pattern, "*")
	matches(pattern, name)
}

matches(pattern, name) if pattern == name

matches(pattern, name) if {
	endswith(pattern, "*")
	not startswith(pattern, "*")
	startswith(name, trim_suffix(pattern, "*"))
}

matches(pattern, name) if {
	startswith(pattern, "*")
	not endswith(pattern, "*")
	endswith(name, trim_prefix(pattern, "*"))
}

matches(pattern, name) if {
	startswith(pattern, "*")
	endswith(pattern, "*")
	contains(name, trim(pattern, "*"))
}
