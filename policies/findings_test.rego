package forge.findings_test

import rego.v1

import data.forge.findings

finding(category, confidence) := {
	"rule_id": sprintf("%s.sample", [category]), "category": category, "severity": "high",
	"confidence": confidence, "pointer": "/result/content/0/text", "span": {"start": 8, "end": 24},
	"fingerprint": "0f1e",
}

result := {"direction": "server_to_client", "kind": "response", "method": "tools/call"}

request := {"direction": "client_to_server", "kind": "request", "method": "tools/call"}

anonymous := {"anonymous": true, "claims": {}, "scopes": []}

test_a_secret_in_a_result_is_refused if {
	denials := findings.deny with input as {"message": result, "findings": [finding("secret", 0.9)]}
	denials == {{"code": "secret_detected", "reason": "the tool result contains what looks like a secret (secret.sample)"}}
}

test_a_secret_in_a_request_is_refused if {
	denials := findings.deny with input as {"message": request, "findings": [finding("secret", 0.5)]}
	count(denials) == 1
}

test_a_low_confidence_secret_is_not if {
	count(findings.deny) == 0 with input as {"message": result, "findings": [finding("secret", 0.2)]}
}

test_personal_data_is_not_a_reason_to_refuse if {
	count(findings.deny) == 0 with input as {"message": result, "findings": [finding("pii", 1)]}
}

test_personal_data_in_a_result_is_redacted_for_ordinary_callers if {
	r := findings.redact with input as {"principal": anonymous, "message": result, "findings": [finding("pii", 0.8)]}
	r == [{"pointer": "/result/content/0/text", "span": {"start": 8, "end": 24}, "replacement": "[REDACTED:pii.sample]"}]
}

test_a_finding_without_a_span_redacts_the_whole_value if {
	f := object.remove(finding("pii", 0.8), ["span"])
	r := findings.redact with input as {"principal": anonymous, "message": result, "findings": [f]}
	r == [{"pointer": "/result/content/0/text", "replacement": "[REDACTED:pii.sample]"}]
}

test_privileged_callers_see_personal_data if {
	principal := {"anonymous": false, "subject": "sam", "claims": {"roles": ["security-auditor"]}, "scopes": []}
	r := findings.redact with input as {"principal": principal, "message": result, "findings": [finding("pii", 0.8)]}
	r == []
}

test_personal_data_in_requests_is_left_alone if {
	r := findings.redact with input as {"principal": anonymous, "message": request, "findings": [finding("pii", 0.8)]}
	r == []
}
