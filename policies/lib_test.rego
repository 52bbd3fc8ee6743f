package forge.lib_test

import rego.v1

import data.forge.lib

test_patterns_match_exact_prefix_suffix_infix_and_all if {
	lib.matches("read_file", "read_file")
	lib.matches("get-*", "get-env")
	lib.matches("*_file", "write_file")
	lib.matches("*sql*", "run_sql_query")
	lib.matches("*", "anything")
}

test_patterns_do_not_match_near_misses if {
	not lib.matches("read_file", "read_file2")
	not lib.matches("get-*", "forget-env")
	not lib.matches("*_file", "file_writer")
	not lib.matches("*sql*", "sequel")
	not lib.matches("read_*", "READ_file")
}

test_roles_come_from_claims_as_arrays_strings_and_nested_claims if {
	roles := lib.roles with input.principal.claims as {
		"roles": ["viewer"],
		"groups": "ops  analyst",
		"realm_access": {"roles": ["admin"]},
	}
	roles == {"viewer", "ops", "analyst", "admin"}
}

test_roles_come_from_identities_for_mtls_callers if {
	roles := lib.roles with input.principal as {"claims": {}, "mtls": {"subject": "CN=a", "spiffe_id": "spiffe://td/a"}}
		with data.forge.identities as {"spiffe://td/a": ["analyst"]}
	roles == {"analyst"}
}

test_unlisted_claims_and_identities_give_no_roles if {
	roles := lib.roles with input.principal as {"subject": "bob", "claims": {"role": "admin", "permissions": ["admin"]}}
		with data.forge.identities as {"alice": ["admin"]}
	count(roles) == 0
}
