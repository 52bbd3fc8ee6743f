package forge.server_requests_test

import rego.v1

import data.forge.server_requests

sampling := {"direction": "server_to_client", "kind": "request", "method": "sampling/createMessage"}

interim := {
	"direction": "server_to_client", "kind": "response", "method": "tools/call",
	"result": {"resultType": "input_required"},
	"input_requests": {"confirm": {"method": "elicitation/create", "params": {}}},
}

test_server_requests_are_allowed_and_visible if {
	count(server_requests.deny) == 0 with input.message as sampling
		with data.forge.config.blocked_server_requests as []
	server_requests.methods == {"sampling/createMessage"} with input.message as sampling
}

test_input_requests_inside_a_result_are_visible if {
	server_requests.methods == {"elicitation/create"} with input.message as interim
}

test_a_blocked_method_is_refused if {
	denials := server_requests.deny with input.message as sampling
		with data.forge.config.blocked_server_requests as ["sampling/createMessage"]
	some d in denials
	d.code == "server_request_blocked"
}

test_a_blocked_method_is_refused_inside_a_result_too if {
	count(server_requests.deny) == 1 with input.message as interim
		with data.forge.config.blocked_server_requests as ["elicitation/create"]
}

test_blocking_one_method_leaves_the_others if {
	count(server_requests.deny) == 0 with input.message as sampling
		with data.forge.config.blocked_server_requests as ["elicitation/create"]
}

test_client_requests_are_not_server_requests if {
	message := {"direction": "client_to_server", "kind": "request", "method": "sampling/createMessage"}
	count(server_requests.methods) == 0 with input.message as message
		with data.forge.config.blocked_server_requests as ["sampling/createMessage"]
}
