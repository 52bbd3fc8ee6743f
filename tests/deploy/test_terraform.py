"""terraform/: formatting, and the structure of each module parsed with python-hcl2 (providers
cannot be downloaded here, so `terraform validate` cannot run): every variable documented and
used, outputs documented and pointing at real resources, module calls passing only declared
variables and every required one, chart values that exist in the chart, no secret in the code."""

import re
import shutil
import subprocess

import hcl2
import pytest
import yaml

from conftest import CHART, REPO

TERRAFORM = REPO / "terraform"
MODULES = [
    TERRAFORM,
    TERRAFORM / "modules" / "aws-eks",
    TERRAFORM / "examples" / "minimal",
    TERRAFORM / "examples" / "production",
]


def unquote(value):
    return value[1:-1] if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"' else value


def parse(module):
    """The module's blocks: {block type: [{name: body}]}, with python-hcl2's quoting removed
    from names."""
    merged = {}
    for path in sorted(module.glob("*.tf")):
        for kind, blocks in hcl2.loads(path.read_text()).items():
            for block in blocks if isinstance(blocks, list) else [blocks]:
                merged.setdefault(kind, []).append(
                    {unquote(k): v for k, v in block.items()} if isinstance(block, dict) else block
                )
    return merged


def named(module, kind):
    """{name: body} of one block type (variable, output, module)."""
    return {
        name: body for block in parse(module).get(kind, []) for name, body in block.items() if not name.startswith("__")
    }


def typed(module, kind):
    """{(type, name)} of resource or data blocks."""
    return {
        (unquote(rtype), unquote(name))
        for block in parse(module).get(kind, [])
        for rtype, bodies in block.items()
        if not rtype.startswith("__")
        for name in bodies
        if not name.startswith("__")
    }


def code_without_variable_blocks(module):
    text = "\n".join(p.read_text() for p in sorted(module.glob("*.tf")))
    out, at = [], 0
    for match in re.finditer(r'^variable "[^"]+" \{', text, re.M):
        out.append(text[at : match.start()])
        depth, i = 0, match.end() - 1
        while True:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
            if depth == 0:
                break
        at = i
    return "".join(out) + text[at:]


def test_terraform_fmt_check_passes():
    terraform = shutil.which("terraform")
    if not terraform:
        pytest.skip("terraform is not installed: formatting not checked (the structure tests below still run)")
    done = subprocess.run(
        [terraform, "fmt", "-check", "-recursive", "-diff", str(TERRAFORM)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("module", MODULES, ids=lambda m: str(m.relative_to(TERRAFORM)) or "root")
def test_every_variable_is_documented_typed_and_used(module):
    variables = named(module, "variable")
    assert variables, f"{module} declares no variables"
    code = code_without_variable_blocks(module)
    for name, body in variables.items():
        assert len(unquote(body.get("description", ""))) > 15, f"{name} needs a description"
        assert "type" in body, f"{name} needs a type"
        assert re.search(rf"\bvar\.{name}\b", code), f"variable {name} is never used"


@pytest.mark.parametrize("module", MODULES, ids=lambda m: str(m.relative_to(TERRAFORM)) or "root")
def test_every_output_is_documented_and_refers_to_what_exists(module):
    outputs = named(module, "output")
    assert outputs, f"{module} has no outputs"
    resources = {f"{t}.{n}" for t, n in typed(module, "resource")}
    modules = set(named(module, "module"))
    for name, body in outputs.items():
        assert len(unquote(body.get("description", ""))) > 15, f"output {name} needs a description"
        value = str(body["value"])
        for ref in re.findall(r"\b((?:aws|helm|kubernetes)_[a-z0-9_]+\.[a-z0-9_]+)", value):
            assert ref in resources, f"output {name} refers to {ref}, which is not declared"
        for ref in re.findall(r"\bmodule\.([a-z0-9_]+)", value):
            assert ref in modules, f"output {name} refers to module {ref}"


def test_root_module_outputs_what_operators_need():
    assert {
        "release_name",
        "namespace",
        "release_status",
        "mutating_webhook_configuration",
        "signing_key_secrets",
    } <= set(named(TERRAFORM, "output"))


@pytest.mark.parametrize("example", ["minimal", "production"])
def test_module_calls_pass_declared_variables_and_every_required_one(example):
    calls = named(TERRAFORM / "examples" / example, "module")
    assert "forge" in calls
    for name, call in calls.items():
        target = (TERRAFORM / "examples" / example / unquote(call["source"])).resolve()
        assert target.is_dir(), f"module {name}: {target} does not exist"
        declared = named(target, "variable")
        passed = {k for k in call if k not in ("source", "__is_block__")}
        assert passed <= set(declared), f"module {name} passes undeclared {passed - set(declared)}"
        required = {v for v, body in declared.items() if "default" not in body}
        assert required <= passed, f"module {name} misses required {required - passed}"


def leaf_paths(tree, prefix=()):
    if isinstance(tree, dict) and tree:
        for key, value in tree.items():
            yield from leaf_paths(value, (*prefix, unquote(key)))
    else:
        yield prefix


def test_chart_values_the_module_sets_exist_in_the_chart():
    """A renamed chart value fails here rather than being silently ignored by Helm."""
    (local_values,) = [block["values"] for block in parse(TERRAFORM)["locals"] if "values" in block]
    chart = yaml.safe_load((CHART / "values.yaml").read_text())
    for path in leaf_paths(local_values):
        node = chart
        for key in path:
            assert isinstance(node, dict) and key in node, f"chart has no value {'.'.join(path)}"
            node = node[key]


def test_signing_key_comes_from_the_secret_store_not_the_code():
    assert ("aws_secretsmanager_secret_version", "signing_key") in typed(TERRAFORM, "data")
    secret = next(b for b in parse(TERRAFORM)["resource"] if "kubernetes_secret_v1" in b)
    assert "data.aws_secretsmanager_secret_version.signing_key.secret_string" in str(secret)
    # The value is put into Secrets Manager out of band: Terraform never holds it as code.
    aws = TERRAFORM / "modules" / "aws-eks"
    assert not {t for t, _ in typed(aws, "resource")} & {"aws_secretsmanager_secret_version", "tls_private_key"}


SECRET_PATTERNS = [
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----",
    r"AKIA[0-9A-Z]{16}",
    r"(?i)(secret_string|password|token|secret_key)\s*=\s*\"[^\"$]{6,}\"",
    r"aws_secret_access_key",
]


def test_no_hard_coded_secrets():
    for path in TERRAFORM.rglob("*.tf"):
        text = path.read_text()
        for pattern in SECRET_PATTERNS:
            assert not re.search(pattern, text), f"{path}: looks like a secret ({pattern})"


def test_secret_scan_catches_a_planted_key():
    planted = 'resource "x" "y" {\n  password = "hunter2-hunter2"\n}\n'
    assert any(re.search(p, planted) for p in SECRET_PATTERNS)


RULE = re.compile(r'\{port = ([^,]+), cidr = ([^,]+), group = ([^,]+), description = \\?"([^"\\]+)\\?"\}')


def test_security_group_rules_let_each_port_be_reached_only_by_its_clients():
    aws = TERRAFORM / "modules" / "aws-eks"
    (ingress,) = [block["ingress"] for block in parse(aws)["locals"] if "ingress" in block]
    rules = [dict(zip(("port", "cidr", "group", "description"), m)) for m in RULE.findall(ingress)]
    assert len(rules) == 5, ingress
    assert "0.0.0.0/0" not in ingress and "::/0" not in ingress
    by_port = {}
    for rule in rules:
        by_port.setdefault(rule["port"], []).append(rule)
    assert set(by_port) == {"var.mcp_port", "var.webhook_port", "var.admin_port"}
    # MCP only from the named clients.
    assert {r["cidr"] for r in by_port["var.mcp_port"]} == {"cidr", "null"}
    assert {r["group"] for r in by_port["var.mcp_port"]} == {"null", "group"}
    assert (
        "for i, cidr in var.mcp_client_cidrs" in ingress
        and "for i, group in var.mcp_client_security_group_ids" in ingress
    )
    # The webhook only from the control plane.
    assert [(r["cidr"], r["group"]) for r in by_port["var.webhook_port"]] == [("null", "var.cluster_security_group_id")]
    # The admin port from the nodes themselves and named monitoring groups, never a CIDR.
    assert {r["cidr"] for r in by_port["var.admin_port"]} == {"null"}
    assert {r["group"] for r in by_port["var.admin_port"]} == {"var.node_security_group_id", "group"}
    rule = next(b for b in parse(aws)["resource"] if "aws_vpc_security_group_ingress_rule" in b)
    assert "local.ingress" in str(rule)
    # The client CIDR variable refuses 0.0.0.0/0.
    validation = named(aws, "variable")["mcp_client_cidrs"]["validation"]
    assert "0.0.0.0/0" in str(validation)


def test_kms_key_rotates_and_has_a_policy():
    aws = TERRAFORM / "modules" / "aws-eks"
    key = next(b for b in parse(aws)["resource"] if "aws_kms_key" in b)["aws_kms_key"]
    body = key['"signing_key"'] if '"signing_key"' in key else key["signing_key"]
    assert body["enable_key_rotation"] is True
    assert "aws_iam_policy_document.signing_key" in str(body["policy"])
    secret = next(b for b in parse(aws)["resource"] if "aws_secretsmanager_secret" in b)["aws_secretsmanager_secret"]
    assert "aws_kms_key.signing_key.arn" in str(secret)
