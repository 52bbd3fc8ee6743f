# Requests the server sends to the client — sampling/createMessage, elicitation/create,
# roots/list, directly or as 2026-07-28 input requests inside a result — are allowed and
# recorded; methods listed in config.blocked_server_requests are refused.
package forge.server_requests

import rego.v1

methods contains input.message.method if {
	input.message.direction == "server_to_client"
	input.message.kind == "request"
}

methods contains request.method if {
	input.message.direction == "server_to_client"
	some request in input.message.input_requests
}

deny contains {
	"code": "server_request_blocked",
	"reason": sprintf("this gateway does not let the server send %s requests to clients", [method]),
} if {
	input.message.direction == "server_to_client"
	some method in methods
	method in data.forge.config.blocked_server_requests
}
