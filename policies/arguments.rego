# Constraints on tool arguments, configured as a list of groups in data.forge.argument_checks.
# Each group runs one check on the arguments it names:
#   path_prefix    paths stay inside allowed directories
#   read_only_sql  SQL is one read-only statement
#   url_allowlist  fetched URLs use allowed schemes and hosts
package forge.arguments

import rego.v1

# The call's own arguments (usually one or two) are looked up in the groups, so a call
# with no constrained argument costs a few lookups and no tool-name matching.
deny contains violation if {
	data.forge.lib.tool_call
	some arg, raw in input.message.tool.arguments
	some group in data.forge.argument_checks
	arg in group.arguments
	applies(group)
	some value in as_list(raw)
	violation := check(group, arg, value)
}

applies(group) if data.forge.lib.matches_any(group.tools, input.message.tool.name)

applies(group) if {
	count(object.get(group, "annotations", {})) > 0
	every key, value in group.annotations {
		input.message.tool.definition.annotations[key] == value
	}
}

# An array argument is checked element by element.
as_list(value) := [value] if not is_array(value)

as_list(value) := value if is_array(value)

check(group, arg, path) := {
	"code": "path_not_allowed",
	"reason": sprintf("%s \"%s\" is outside the allowed directories %v", [arg, path, group.allowed_prefixes]),
} if {
	group.check == "path_prefix"
	not path_allowed(path, group.allowed_prefixes)
}

check(group, arg, statement) := {
	"code": "sql_not_read_only",
	"reason": sprintf("%s must be one read-only statement starting with %v", [arg, group.read_verbs]),
} if {
	group.check == "read_only_sql"
	not read_only(statement, group)
}

check(group, arg, url) := {
	"code": "url_not_allowed",
	"reason": sprintf("%s \"%s\" is not allowed: use %v on %v", [arg, url, group.allowed_schemes, group.allowed_hosts]),
} if {
	group.check == "url_allowlist"
	not url_allowed(url, group)
}

# A misspelt check must not silently check nothing.
check(group, _, _) := {
	"code": "policy_misconfigured",
	"reason": sprintf("argument group check \"%v\" is unknown; the call is refused until the policy is fixed", [group.check]),
} if {
	not group.check in {"path_prefix", "read_only_sql", "url_allowlist"}
}

# --- path_prefix ------------------------------------------------------------------------

# Inside a directory means equal to it or below it: `/workspace-evil` is not inside
# `/workspace/`. With a slash appended to both, one prefix test covers the two cases, and
# `..` anywhere shows as `/../`.
path_allowed(path, prefixes) if {
	is_string(path)
	slashed := concat("", [path, "/"])
	# `..` climbs out of any prefix; a backslash or NUL could hide one from this check
	# while the server's filesystem API still honours it.
	not contains(slashed, "/../")
	not contains(path, "\\")
	not contains(path, "\u0000")
	some prefix in prefixes
	startswith(slashed, concat("", [trim_suffix(prefix, "/"), "/"]))
}

# --- read_only_sql ----------------------------------------------------------------------

read_only(statement, group) if {
	is_string(statement)
	text := lower(trim_space(statement))
	regex.find_n(`^[a-z_]+`, text, 1)[0] in group.read_verbs
	not contains(trim_right(text, "; \t\r\n"), ";")
	not regex.match(sprintf(`\b(%s)\b`, [concat("|", group.write_keywords)]), text)
}

# --- url_allowlist ----------------------------------------------------------------------

url_allowed(url, group) if {
	is_string(url)
	not ambiguous(url)
	parts := split(url, "://")
	count(parts) > 1
	lower(parts[0]) in group.allowed_schemes
	rest := substring(url, count(parts[0]) + 3, -1)
	authority := split(split(split(rest, "/")[0], "?")[0], "#")[0]
	not contains(authority, "@")
	not contains(authority, "%")
	not startswith(authority, "[")
	host := lower(split(authority, ":")[0])
	host_allowed(host, group.allowed_hosts)
}

# URL parsers disagree about these (WHATWG reads `\` as `/` and drops tabs and newlines),
# so the host this policy sees might not be the one the server fetches.
ambiguous(url) if {
	some c in ["\\", " ", "\t", "\n", "\r", "\u0000"]
	contains(url, c)
}

host_allowed(host, allowed) if host in allowed

host_allowed(host, allowed) if {
	some entry in allowed
	startswith(entry, "*.")
	endswith(host, trim_prefix(entry, "*"))
}
