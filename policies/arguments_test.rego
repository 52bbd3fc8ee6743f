package forge.arguments_test

import rego.v1

import data.forge.arguments

call(tool, args) := {"message": {
	"direction": "client_to_server", "kind": "request", "method": "tools/call",
	"tool": {"name": tool, "arguments": args},
}}

# data.forge.argument_checks with the group called `name` changed.
replacing(name, changes) := [changed(g, name, changes) | some g in data.forge.argument_checks]

changed(g, name, changes) := object.union(g, changes) if g.name == name

changed(g, name, _) := g if g.name != name

# The denial codes for a call.
denied(tool, args) := {d.code | some d in denials} if {
	denials := arguments.deny with input as call(tool, args)
}

# --- Filesystem paths

test_a_path_inside_an_allowed_directory_is_allowed if {
	denied("read_file", {"path": "/workspace/src/main.rs"}) == set()
	denied("read_file", {"path": "/workspace"}) == set()
}

test_a_path_outside_is_refused if {
	denied("read_file", {"path": "/etc/passwd"}) == {"path_not_allowed"}
}

test_a_sibling_sharing_the_prefix_is_refused if {
	denied("read_file", {"path": "/workspace-evil/x"}) == {"path_not_allowed"}
}

test_climbing_out_with_dot_dot_is_refused if {
	denied("read_file", {"path": "/workspace/../etc/passwd"}) == {"path_not_allowed"}
	denied("read_file", {"path": "/workspace/a/.."}) == {"path_not_allowed"}
}

test_a_dot_dot_inside_a_name_is_not_climbing if {
	denied("read_file", {"path": "/workspace/notes..txt"}) == set()
}

test_backslashes_and_relative_paths_are_refused if {
	denied("read_file", {"path": "/workspace\\..\\etc"}) == {"path_not_allowed"}
	denied("read_file", {"path": "workspace/x"}) == {"path_not_allowed"}
	denied("read_file", {"path": "~/x"}) == {"path_not_allowed"}
}

test_every_path_of_an_array_is_checked if {
	denied("read_multiple_files", {"paths": ["/workspace/a", "/etc/hosts"]}) == {"path_not_allowed"}
	denied("read_multiple_files", {"paths": ["/workspace/a", "/tmp/b"]}) == set()
}

test_every_path_argument_is_checked if {
	denied("move_file", {"source": "/workspace/a", "destination": "/root/a"}) == {"path_not_allowed"}
}

test_a_path_that_is_not_a_string_is_refused if {
	denied("read_file", {"path": {"nested": "/workspace/x"}}) == {"path_not_allowed"}
}

test_tools_outside_the_group_are_not_checked if {
	denied("echo", {"path": "/etc/passwd"}) == set()
}

test_a_group_can_match_tools_by_annotation if {
	checks := replacing("filesystem", {"tools": [], "annotations": {"x-forge-kind": "filesystem"}})
	doc := {"message": object.union(call("open", {"path": "/etc/passwd"}).message, {"tool": {"definition": {"annotations": {"x-forge-kind": "filesystem"}}}})}
	{d.code | some d in arguments.deny} == {"path_not_allowed"} with input as doc with data.forge.argument_checks as checks
}

test_an_annotation_group_does_not_match_other_annotations if {
	checks := replacing("filesystem", {"tools": [], "annotations": {"x-forge-kind": "filesystem"}})
	doc := {"message": object.union(call("open", {"path": "/etc/passwd"}).message, {"tool": {"definition": {"annotations": {"readOnlyHint": true}}}})}
	count(arguments.deny) == 0 with input as doc with data.forge.argument_checks as checks
}

# --- Read-only SQL

test_read_only_statements_are_allowed if {
	denied("query", {"sql": "SELECT id, deleted_at FROM users WHERE updated_by = 3;"}) == set()
	denied("query", {"sql": "  with t as (select 1) select * from t"}) == set()
	denied("query", {"sql": "EXPLAIN SELECT 1"}) == set()
}

test_writes_are_refused if {
	denied("query", {"sql": "DELETE FROM users"}) == {"sql_not_read_only"}
	denied("query", {"sql": "UPDATE users SET admin = true"}) == {"sql_not_read_only"}
	denied("query", {"sql": "drop table users"}) == {"sql_not_read_only"}
}

test_writes_hidden_behind_a_read_are_refused if {
	denied("query", {"sql": "WITH gone AS (DELETE FROM users RETURNING *) SELECT * FROM gone"}) == {"sql_not_read_only"}
	denied("query", {"sql": "SELECT * INTO backup FROM users"}) == {"sql_not_read_only"}
	denied("query", {"sql": "SELECT 1; DROP TABLE users"}) == {"sql_not_read_only"}
	denied("query", {"sql": "EXPLAIN ANALYZE DELETE FROM users"}) == {"sql_not_read_only"}
	denied("query", {"sql": "SELECT set_config('role', 'admin', false)"}) == {"sql_not_read_only"}
}

test_statements_not_starting_with_a_read_are_refused if {
	denied("query", {"sql": "/* hi */ SELECT 1"}) == {"sql_not_read_only"}
	denied("query", {"sql": ""}) == {"sql_not_read_only"}
	denied("query", {"sql": 42}) == {"sql_not_read_only"}
}

test_sql_arguments_of_other_tools_are_not_checked if {
	denied("search", {"query": "how to delete a file"}) == set()
}

# --- URL allowlist

test_allowed_hosts_over_https_are_allowed if {
	denied("fetch", {"url": "https://github.com/modelcontextprotocol"}) == set()
	denied("fetch", {"url": "https://spec.modelcontextprotocol.io:443/x?y#z"}) == set()
	denied("fetch", {"url": "HTTPS://GitHub.com/"}) == set()
}

test_other_hosts_are_refused if {
	denied("fetch", {"url": "https://evil.example/x"}) == {"url_not_allowed"}
	denied("fetch", {"url": "https://169.254.169.254/latest/meta-data"}) == {"url_not_allowed"}
}

test_lookalike_hosts_are_refused if {
	denied("fetch", {"url": "https://github.com.evil.example/"}) == {"url_not_allowed"}
	denied("fetch", {"url": "https://evilmodelcontextprotocol.io/"}) == {"url_not_allowed"}
	denied("fetch", {"url": "https://modelcontextprotocol.io.evil/"}) == {"url_not_allowed"}
}

test_a_wildcard_covers_subdomains_only if {
	denied("fetch", {"url": "https://a.b.modelcontextprotocol.io/"}) == set()
	checks := replacing("fetch", {"allowed_hosts": ["*.example.com"]})
	{d.code | some d in arguments.deny} == {"url_not_allowed"} with input as call("fetch", {"url": "https://example.com/"})
		with data.forge.argument_checks as checks
}

test_other_schemes_are_refused if {
	denied("fetch", {"url": "http://github.com/"}) == {"url_not_allowed"}
	denied("fetch", {"url": "file:///etc/passwd"}) == {"url_not_allowed"}
	denied("fetch", {"url": "github.com/x"}) == {"url_not_allowed"}
}

test_urls_parsers_read_differently_are_refused if {
	denied("fetch", {"url": "https://github.com@evil.example/"}) == {"url_not_allowed"}
	denied("fetch", {"url": "https://evil.example\\@github.com/"}) == {"url_not_allowed"}
	denied("fetch", {"url": "https://git\thub.com/"}) == {"url_not_allowed"}
	denied("fetch", {"url": "https://%67ithub.com/"}) == {"url_not_allowed"}
	denied("fetch", {"url": "https://[::1]/"}) == {"url_not_allowed"}
}

test_url_arguments_of_other_tools_are_not_checked if {
	denied("echo", {"url": "https://evil.example/"}) == set()
}

# --- Configuration mistakes

test_an_unknown_check_refuses_the_calls_it_covers if {
	checks := replacing("filesystem", {"check": "path_prefixes"})
	denials := arguments.deny with input as call("read_file", {"path": "/workspace/a"})
		with data.forge.argument_checks as checks
	{d.code | some d in denials} == {"policy_misconfigured"}
}

test_an_unknown_check_leaves_calls_of_other_tools_alone if {
	checks := replacing("filesystem", {"check": "path_prefixes"})
	count(arguments.deny) == 0 with input as call("echo", {"path": "/workspace/a"})
		with data.forge.argument_checks as checks
}
