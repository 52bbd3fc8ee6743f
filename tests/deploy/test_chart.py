"""The Helm chart: lint with the real Helm library, render it, validate every manifest
against the Kubernetes schemas, and check what the manifests mean (who gets injected, which
certificates are trusted, what the sidecars receive)."""

import asyncio
import base64
import re
import shutil

import kubernetes_validate
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from conftest import (
    CHART,
    EVERYTHING_ON,
    EXAMPLES,
    NAMESPACE,
    REPO,
    RELEASE,
    SCENARIOS,
    find,
    objects,
    render,
    render_notes,
)

# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest schemas.
KUBE_VERSIONS = ["1.27.0", kubernetes_validate.latest_version()]
# Custom resources have no schema in kubernetes-validate; these kinds are checked below by hand.
CUSTOM_KINDS = {
    ("cert-manager.io/v1", "Issuer"),
    ("cert-manager.io/v1", "Certificate"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PodMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
}


def lint_with_helm_sdkpy(chart_dir):
    import helm_sdkpy

    return asyncio.run(helm_sdkpy.Lint(helm_sdkpy.Configuration(namespace=NAMESPACE)).run(str(chart_dir)))


def chart_copy(tmp_path, values=None):
    """A copy of the chart (symlinks resolved, as `helm package` does) whose values.yaml is
    the defaults merged with `values`: helm-sdkpy lints a chart directory as it is."""
    import helm_python

    copy = tmp_path / "forge"
    shutil.copytree(CHART, copy, symlinks=False)
    if values:
        merged = helm_python.Chart.load(str(CHART)).merge_values(values)
        (copy / "values.yaml").write_text(yaml.safe_dump(merged))
    return copy


# ---- lint


@pytest.mark.parametrize("scenario", ["default", *[p.stem for p in EXAMPLES]])
def test_helm_lint_passes_without_warnings(scenario, tmp_path):
    import helm_python

    values = SCENARIOS[scenario]
    report = lint_with_helm_sdkpy(chart_copy(tmp_path, values))
    assert report["TotalChartsLinted"] == 1
    assert not report["Errors"], report
    assert all(m["Severity"] < 2 for m in report["Messages"]), report["Messages"]
    # The same chart through the other binding (helm-python-sdk), strict: warnings are errors.
    for kube in ("v1.27.0", None):  # the oldest Kubernetes the chart supports, and the newest
        report = helm_python.lint(str(CHART), values, strict=True, namespace=NAMESPACE, kube_version=kube)
        assert not report["errors"] and all(m["severity"] < 2 for m in report["messages"]), report


def test_helm_lint_catches_a_broken_template(tmp_path):
    copy = chart_copy(tmp_path)
    (copy / "templates" / "broken.yaml").write_text("kind: ConfigMap\nname: {{ .Values.nope.deeper }}\n")
    report = lint_with_helm_sdkpy(copy)
    assert report["Errors"] or any(m["Severity"] >= 3 for m in report["Messages"]), report


def test_examples_exist():
    assert {p.stem for p in EXAMPLES} >= {"minimal", "production", "cert-manager"}


# ---- every manifest is a valid Kubernetes object


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_every_manifest_validates_against_kubernetes_schemas(scenario):
    rendered = objects(SCENARIOS[scenario])
    assert rendered
    for obj in rendered:
        key = (obj["apiVersion"], obj["kind"])
        if key in CUSTOM_KINDS:
            assert obj["metadata"]["name"] and obj["spec"], obj
            continue
        for version in KUBE_VERSIONS:
            kubernetes_validate.validate(obj, version, strict=True)


def test_custom_resources_are_known_kinds():
    rendered = objects(SCENARIOS["everything-on"]) + objects(SCENARIOS["cert-manager"])
    kinds = {(o["apiVersion"], o["kind"]) for o in rendered}
    assert kinds & CUSTOM_KINDS == CUSTOM_KINDS


# ---- the injector


def test_injector_is_highly_available(default_objects):
    deployment = find(default_objects, "Deployment")[0]
    pods = deployment["spec"]["template"]
    assert deployment["spec"]["replicas"] >= 2
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pods["metadata"]["labels"].items()
    pdb = find(default_objects, "PodDisruptionBudget")[0]
    assert pdb["spec"]["selector"]["matchLabels"] == selector
    assert 1 <= pdb["spec"]["minAvailable"] < deployment["spec"]["replicas"]
    anti = pods["spec"]["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]
    assert anti["podAffinityTerm"]["labelSelector"]["matchLabels"] == selector
    assert anti["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"


def test_hard_anti_affinity_is_required_scheduling():
    deployment = find(objects({"injector": {"antiAffinity": "hard"}}), "Deployment")[0]
    anti = deployment["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    assert list(anti) == ["requiredDuringSchedulingIgnoredDuringExecution"]


def test_injector_runs_the_webhook_as_agreed_and_locked_down(default_objects):
    pod = find(default_objects, "Deployment")[0]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "ghcr.io/forge/forge:0.1.0"
    assert container["args"] == [
        "webhook",
        "--config",
        "/etc/forge-webhook/config.yaml",
        "--tls-cert",
        "/etc/forge-webhook/tls/tls.crt",
        "--tls-key",
        "/etc/forge-webhook/tls/tls.key",
        "--listen",
        "0.0.0.0:9443",
    ]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    # Not 8443, the sidecars' MCP port: firewalls tell the API server and MCP clients apart.
    assert ports == {"webhook": 9443, "admin": 9090}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "admin"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "admin"}
    sc = container["securityContext"]
    assert sc["runAsNonRoot"] and sc["runAsUser"] == 65532 and sc["readOnlyRootFilesystem"]
    assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"]["drop"] == ["ALL"]
    assert sc["seccompProfile"]["type"] == "RuntimeDefault"
    assert pod["automountServiceAccountToken"] is False
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes[mounts["/etc/forge-webhook/tls"]]["secret"]["secretName"] == f"{RELEASE}-injector-tls"
    assert volumes[mounts["/etc/forge-webhook/config.yaml"]]["configMap"]["name"] == f"{RELEASE}-injector"


def test_image_digest_pins_the_image():
    digest = "sha256:" + "ab" * 32
    deployment = find(objects({"image": {"digest": digest}}), "Deployment")[0]
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == f"ghcr.io/forge/forge@{digest}"


def test_service_account_has_no_api_access(default_objects):
    account = find(default_objects, "ServiceAccount")[0]
    assert account["automountServiceAccountToken"] is False
    assert not [o for o in default_objects if o["kind"] in ("Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding")]


def test_network_policy_opens_only_the_webhook_port_and_admin_to_monitoring(default_objects):
    policy = find(default_objects, "NetworkPolicy")[0]["spec"]
    deployment = find(default_objects, "Deployment")[0]
    assert policy["podSelector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    assert sorted(policy["policyTypes"]) == ["Egress", "Ingress"]
    assert policy["egress"] == []
    webhook, admin = policy["ingress"]
    assert webhook == {"ports": [{"port": "webhook", "protocol": "TCP"}]}
    assert admin["ports"] == [{"port": "admin", "protocol": "TCP"}]
    assert admin["from"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]


# ---- the webhook's certificate


def test_generated_ca_bundle_verifies_the_served_certificate(default_objects):
    secret = find(default_objects, "Secret", f"{RELEASE}-injector-tls")[0]
    data = {k: base64.b64decode(v) for k, v in secret["data"].items()}
    ca = x509.load_pem_x509_certificate(data["ca.crt"])
    cert = x509.load_pem_x509_certificate(data["tls.crt"])
    key = serialization.load_pem_private_key(data["tls.key"], password=None)
    hooks = find(default_objects, "MutatingWebhookConfiguration")[0]["webhooks"]
    assert {base64.b64decode(h["clientConfig"]["caBundle"]) for h in hooks} == {data["ca.crt"]}
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    public = ca.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        public.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), cert.signature_hash_algorithm)
    else:
        public.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))
    assert key.public_key().public_numbers() == cert.public_key().public_numbers()
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    service = find(default_objects, "Service")[0]["metadata"]["name"]
    # The API server calls https://SERVICE.NAMESPACE.svc:443/mutate.
    assert f"{service}.{NAMESPACE}.svc" in names
    assert hooks[0]["clientConfig"]["service"] == {
        "name": service,
        "namespace": NAMESPACE,
        "path": "/mutate",
        "port": 443,
    }


def test_cert_manager_issues_the_webhook_certificate_and_injects_its_ca():
    rendered = objects(SCENARIOS["cert-manager"])
    assert not [o for o in rendered if o["kind"] == "Secret" and o["metadata"]["name"].endswith("injector-tls")]
    hooks = find(rendered, "MutatingWebhookConfiguration")[0]
    assert all("caBundle" not in h["clientConfig"] for h in hooks["webhooks"])
    ns, name = hooks["metadata"]["annotations"]["cert-manager.io/inject-ca-from"].split("/")
    serving = find(rendered, "Certificate", name)[0]
    assert ns == serving["metadata"]["namespace"] == NAMESPACE
    assert serving["spec"]["secretName"] == f"{RELEASE}-injector-tls"
    assert f"{RELEASE}-injector.{NAMESPACE}.svc" in serving["spec"]["dnsNames"]
    ca_issuer = find(rendered, "Issuer", serving["spec"]["issuerRef"]["name"])[0]
    ca_cert = find(rendered, "Certificate", f"{RELEASE}-injector-ca")[0]
    assert ca_cert["spec"]["isCA"] and ca_issuer["spec"]["ca"]["secretName"] == ca_cert["spec"]["secretName"]
    assert find(rendered, "Issuer", ca_cert["spec"]["issuerRef"]["name"])[0]["spec"] == {"selfSigned": {}}


def test_cert_manager_with_an_existing_issuer_creates_no_ca_chain():
    values = {
        "certificates": {"certManager": {"enabled": True, "issuerRef": {"name": "corp-ca", "kind": "ClusterIssuer"}}}
    }
    rendered = objects(values)
    assert not [o for o in rendered if o["kind"] == "Issuer"]
    (serving,) = find(rendered, "Certificate")
    assert serving["spec"]["issuerRef"] == {"name": "corp-ca", "kind": "ClusterIssuer", "group": "cert-manager.io"}


# ---- who gets injected


def selector_matches(selector, labels):
    """Kubernetes label selector semantics (matchLabels and matchExpressions)."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        present, value = expr["key"] in labels, labels.get(expr["key"])
        op = expr["operator"]
        if op == "In" and not (present and value in expr["values"]):
            return False
        if op == "NotIn" and present and value in expr["values"]:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True


def hooks_called(rendered, namespace, namespace_labels, pod_labels):
    """The webhooks of the configuration the API server calls for a new pod."""
    ns_labels = {"kubernetes.io/metadata.name": namespace, **namespace_labels}
    config = find(rendered, "MutatingWebhookConfiguration")[0]
    return [
        h["name"]
        for h in config["webhooks"]
        if selector_matches(h["namespaceSelector"], ns_labels) and selector_matches(h["objectSelector"], pod_labels)
    ]


OPTED_IN_NS = {"forge.dev/inject": "enabled"}
OPTED_IN_POD = {"app": "mcp", "forge.dev/inject": "true"}


@pytest.mark.parametrize(
    "namespace, ns_labels, pod_labels, called",
    [
        ("mcp", {}, OPTED_IN_POD, 1),  # a labelled pod
        ("mcp", OPTED_IN_NS, {"app": "mcp"}, 1),  # every pod of a labelled namespace
        ("mcp", OPTED_IN_NS, OPTED_IN_POD, 1),  # both: called once, not twice
        ("mcp", {}, {"app": "mcp"}, 0),  # neither: the near-miss
        ("mcp", {}, {"forge.dev/inject": "yes"}, 0),  # only the exact value opts in
        ("mcp", {"forge.dev/inject": "true"}, {"app": "mcp"}, 0),  # the namespace value is "enabled"
        ("mcp", OPTED_IN_NS, {"forge.dev/inject": "false"}, 0),  # a pod opts out of its namespace
        ("mcp", OPTED_IN_NS, {"forge.dev/inject": "disabled"}, 0),
        ("kube-system", OPTED_IN_NS, OPTED_IN_POD, 0),  # never the control plane
        (NAMESPACE, OPTED_IN_NS, OPTED_IN_POD, 0),  # never the injector itself
        ("kube-public", {}, OPTED_IN_POD, 0),  # excludeNamespaces
    ],
)
def test_webhook_selectors_choose_the_opted_in_pods(default_objects, namespace, ns_labels, pod_labels, called):
    assert len(hooks_called(default_objects, namespace, ns_labels, pod_labels)) == called


def test_target_namespaces_limit_injection():
    rendered = objects({"targetNamespaces": ["mcp-a"]})
    assert len(hooks_called(rendered, "mcp-a", {}, OPTED_IN_POD)) == 1
    assert len(hooks_called(rendered, "mcp-b", OPTED_IN_NS, OPTED_IN_POD)) == 0


def test_webhook_admits_pod_creation_only_with_the_configured_failure_policy(default_objects):
    for hook in find(default_objects, "MutatingWebhookConfiguration")[0]["webhooks"]:
        assert hook["rules"] == [
            {
                "operations": ["CREATE"],
                "apiGroups": [""],
                "apiVersions": ["v1"],
                "resources": ["pods"],
                "scope": "Namespaced",
            }
        ]
        assert hook["sideEffects"] == "None" and hook["failurePolicy"] == "Fail"
    relaxed = find(objects({"webhook": {"failurePolicy": "Ignore"}}), "MutatingWebhookConfiguration")[0]
    assert {h["failurePolicy"] for h in relaxed["webhooks"]} == {"Ignore"}
    assert "WARNING: failurePolicy is Ignore" in render_notes({"webhook": {"failurePolicy": "Ignore"}})


# ---- what the sidecars get


def webhook_config(rendered):
    return yaml.safe_load(find(rendered, "ConfigMap", f"{RELEASE}-injector")[0]["data"]["config.yaml"])


def webhook_config_keys():
    """The camelCase keys `forge webhook` accepts (src/webhook/config.rs), when that source is
    in this tree; None before the webhook lands."""
    source = REPO / "src" / "webhook" / "config.rs"
    if not source.exists():
        return None
    text = source.read_text()
    body = text[text.index("pub struct WebhookConfig") :]
    body = body[: body.index("\n}")]
    snake = re.findall(r"^\s*pub (\w+):", body, re.M)
    return {re.sub(r"_(\w)", lambda m: m.group(1).upper(), name) for name in snake}


def test_webhook_config_gives_the_sidecars_what_the_chart_renders():
    rendered = objects(EVERYTHING_ON)
    config = webhook_config(rendered)
    assert config == {
        "image": "ghcr.io/forge/forge:0.1.0",
        "imagePullPolicy": "IfNotPresent",
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "1", "memory": "256Mi"}},
        "tls": {"secretName": "forge-sidecar-tls"},
        "policy": {"configMap": f"{RELEASE}-policy"},
        "signingKey": {"secretName": f"{RELEASE}-signing-key", "key": "signing-key.pem"},
        "adminPort": 9090,
        "listenPort": 8443,
        "onBadAnnotation": "reject",
        "portName": "mcp",
    }
    known = webhook_config_keys()
    if known is not None:
        assert set(config) <= known, f"keys forge webhook does not know: {set(config) - known}"
    # Everything the config names exists in every target namespace.
    for namespace in EVERYTHING_ON["targetNamespaces"]:
        names = {(o["kind"], o["metadata"]["name"]) for o in rendered if o["metadata"].get("namespace") == namespace}
        assert {("ConfigMap", f"{RELEASE}-policy"), ("Secret", f"{RELEASE}-signing-key")} <= names


def test_production_config_uses_teams_objects_and_cert_manager_csi():
    config = webhook_config(objects(SCENARIOS["production"]))
    assert config["tls"] == {"certManager": {"issuer": "mcp-workloads", "issuerKind": "ClusterIssuer"}}
    assert config["policy"] == {"configMap": "mcp-policy"}
    assert config["signingKey"] == {"secretName": "forge-evidence-signing-key", "key": "signing-key.pem"}
    assert config["image"].startswith("registry.example.com/platform/forge@sha256:")
    assert "ephemeral" in config["stateVolume"]


def test_without_target_namespaces_nothing_is_referenced_that_the_chart_does_not_create(default_objects):
    config = webhook_config(default_objects)
    assert "policy" not in config and "signingKey" not in config and "plugins" not in config
    assert not [o for o in default_objects if o["metadata"].get("namespace") not in (NAMESPACE, None)]
    assert "no evidence signing key is configured" in render_notes()


def test_bundled_policy_is_the_repository_bundle_file_for_file():
    rendered = objects({"targetNamespaces": ["mcp"]})
    data = find(rendered, "ConfigMap", f"{RELEASE}-policy")[0]["data"]
    bundle = {p.name: p.read_text() for p in (REPO / "policies").iterdir() if p.suffix in (".rego", ".yaml", ".json")}
    assert any(name.endswith("_test.rego") for name in bundle)
    assert data == bundle


def test_generated_signing_key_is_one_ed25519_pkcs8_key_for_every_namespace():
    rendered = objects({"targetNamespaces": ["mcp-a", "mcp-b"]})
    secrets = find(rendered, "Secret", f"{RELEASE}-signing-key")
    assert {s["metadata"]["namespace"] for s in secrets} == {"mcp-a", "mcp-b"}
    pems = {base64.b64decode(s["data"]["signing-key.pem"]) for s in secrets}
    assert len(pems) == 1
    (pem,) = pems
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8, what src/signing.rs reads
    assert isinstance(serialization.load_pem_private_key(pem, password=None), ed25519.Ed25519PrivateKey)
    # Deleting the key would orphan the evidence it signed.
    assert all(s["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep" for s in secrets)


def test_existing_signing_key_and_policy_are_used_not_generated():
    values = {
        "targetNamespaces": ["mcp"],
        "signingKey": {"existingSecret": "vault-key"},
        "policy": {"configMap": "ours"},
    }
    rendered = objects(values)
    assert not [o for o in rendered if o["kind"] == "Secret" and "signing-key" in o["metadata"]["name"]]
    assert not [o for o in rendered if o["kind"] == "ConfigMap" and o["metadata"]["name"].endswith("-policy")]
    config = webhook_config(rendered)
    assert config["signingKey"] == {"secretName": "vault-key", "key": "signing-key.pem"}
    assert config["policy"] == {"configMap": "ours"}


def test_plugin_config_maps_are_passed_on_only_when_named(default_objects):
    assert "plugins" not in webhook_config(default_objects)
    named = {"plugins": {"configMaps": {"secrets": "team-secrets"}}, "targetNamespaces": ["mcp"]}
    rendered = objects(named)
    assert webhook_config(rendered)["plugins"] == {"configMaps": {"secrets": "team-secrets"}}
    assert not [o for o in rendered if o["kind"] == "ConfigMap" and "-plugin-" in o["metadata"]["name"]]


def chart_with_plugins(tmp_path, plugins):
    """A copy of the chart with `plugins` ({name: (manifest text, wasm bytes)}) under
    files/plugins/, as `cp -a wasm-plugins/dist/. helm/forge/files/plugins/` leaves it."""
    chart = chart_copy(tmp_path)
    for name, (manifest, wasm) in plugins.items():
        (chart / "files" / "plugins" / name).mkdir(parents=True)
        (chart / "files" / "plugins" / name / "manifest.yaml").write_text(manifest)
        (chart / "files" / "plugins" / name / f"{name}.wasm").write_bytes(wasm)
    return chart


def render_chart(chart, values):
    import helm_python

    rendered = helm_python.Chart.load(str(chart)).render(values, name=RELEASE, namespace=NAMESPACE)
    return [d for path, text in rendered.items() if not path.endswith("NOTES.txt") for d in yaml.safe_load_all(text) if d]


def shipped_or_stand_in_plugins():
    """The shipped detectors when wasm-plugins/build.sh has built them (real sizes, ~0.8 MiB
    each), else two stand-ins with the same layout."""
    dist = REPO / "wasm-plugins" / "dist"
    built = {p.parent.name: p.parent for p in dist.glob("*/manifest.yaml")}
    if built:
        return {n: ((d / "manifest.yaml").read_text(), (d / f"{n}.wasm").read_bytes()) for n, d in built.items()}
    return {n: (f"name: {n}\nwasm: {n}.wasm\n", bytes(range(256)) * 100) for n in ("pii", "secrets")}


def test_bundled_plugins_are_one_config_map_each_that_the_sidecars_mount(tmp_path):
    plugins = shipped_or_stand_in_plugins()
    chart = chart_with_plugins(tmp_path, plugins)
    rendered = render_chart(chart, {"targetNamespaces": ["mcp-a", "mcp-b"]})
    expected = {name: f"{RELEASE}-plugin-{name}" for name in plugins}
    assert webhook_config(rendered)["plugins"] == {"configMaps": expected}
    for namespace in ("mcp-a", "mcp-b"):
        for name, (manifest, wasm) in plugins.items():
            (cm,) = [o for o in find(rendered, "ConfigMap", expected[name]) if o["metadata"]["namespace"] == namespace]
            # Exactly the keys the webhook's projected volume maps to <name>/manifest.yaml and <name>/<name>.wasm.
            assert cm["data"] == {"manifest.yaml": manifest}
            assert set(cm["binaryData"]) == {f"{name}.wasm"}
            assert base64.b64decode(cm["binaryData"][f"{name}.wasm"]) == wasm
            assert cm["metadata"]["labels"]["forge.dev/plugin"] == name
    # Valid ConfigMaps, for the oldest and newest Kubernetes the chart supports.
    for cm in [o for o in rendered if "-plugin-" in o["metadata"]["name"]]:
        for version in KUBE_VERSIONS:
            kubernetes_validate.validate(cm, version, strict=True)
    # Without target namespaces there is nowhere to put them: nothing rendered, nothing named.
    rendered = render_chart(chart, {})
    assert "plugins" not in webhook_config(rendered)
    assert not [o for o in rendered if "-plugin-" in o["metadata"]["name"]]


def test_a_plugin_over_the_config_map_limit_fails_the_install_naming_it(tmp_path):
    import helm_python

    # Just over 1 MiB together with its manifest; 1 MiB exactly less the manifest fits.
    manifest = "name: big\nwasm: big.wasm\n"
    chart = chart_with_plugins(tmp_path / "over", {"big": (manifest, b"\0" * (1024 * 1024 - len(manifest) + 1))})
    with pytest.raises(helm_python.HelmRenderError) as refused:
        render_chart(chart, {"targetNamespaces": ["mcp"]})
    assert "plugin big is over the 1 MiB a ConfigMap holds" in str(refused.value)
    chart = chart_with_plugins(tmp_path / "fits", {"big": (manifest, b"\0" * (1024 * 1024 - len(manifest)))})
    assert find(render_chart(chart, {"targetNamespaces": ["mcp"]}), "ConfigMap", f"{RELEASE}-plugin-big")


def test_a_plugin_directory_without_its_component_fails_the_install(tmp_path):
    import helm_python

    chart = chart_with_plugins(tmp_path, {})
    (chart / "files" / "plugins" / "half").mkdir(parents=True)
    (chart / "files" / "plugins" / "half" / "manifest.yaml").write_text("name: half\n")
    with pytest.raises(helm_python.HelmRenderError) as refused:
        render_chart(chart, {"targetNamespaces": ["mcp"]})
    assert "files/plugins/half/ has manifest.yaml but no half.wasm" in str(refused.value)


def test_injected_pods_are_reachable_only_on_the_sidecars_ports():
    rendered = objects({"targetNamespaces": ["mcp-a", "mcp-b"]})
    policies = find(rendered, "NetworkPolicy", f"{RELEASE}-injected-pods")
    assert {p["metadata"]["namespace"] for p in policies} == {"mcp-a", "mcp-b"}
    spec = policies[0]["spec"]
    # Selected by the label the webhook adds (src/webhook/patch.rs), so pods without Forge are untouched.
    assert spec["podSelector"] == {"matchExpressions": [{"key": "forge.dev/injected", "operator": "Exists"}]}
    assert spec["policyTypes"] == ["Ingress"]
    # Only the sidecar's named ports: the server's renamed port (forge-upstream) is not admitted.
    ports = [port["port"] for rule in spec["ingress"] for port in rule["ports"]]
    assert ports == ["mcp", "forge-admin"]
    admin = spec["ingress"][1]
    assert admin["from"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]
    assert "from" not in spec["ingress"][0], "MCP clients: anyone, unless mcpFrom narrows it"
    # The names are the ones the webhook gives the sidecar's ports.
    patch_rs = (REPO / "src" / "webhook" / "patch.rs").read_text()
    assert 'ADMIN_PORT_NAME: &str = "forge-admin"' in patch_rs and 'UPSTREAM_PORT_NAME: &str = "forge-upstream"' in patch_rs
    assert '"forge.dev~1injected"' in patch_rs or "forge.dev~1injected" in patch_rs

    narrowed = objects(
        {
            "targetNamespaces": ["mcp"],
            "sidecar": {"portName": "rpc"},
            "injectedPodsNetworkPolicy": {
                "mcpFrom": [{"namespaceSelector": {"matchLabels": {"team": "agents"}}}],
                "extraIngress": [{"ports": [{"port": "metrics"}]}],
            },
        }
    )
    (policy,) = find(narrowed, "NetworkPolicy", f"{RELEASE}-injected-pods")
    rules = policy["spec"]["ingress"]
    assert rules[0] == {"ports": [{"port": "rpc", "protocol": "TCP"}], "from": [{"namespaceSelector": {"matchLabels": {"team": "agents"}}}]}
    assert rules[2] == {"ports": [{"port": "metrics"}]}
    off = objects({"targetNamespaces": ["mcp"], "injectedPodsNetworkPolicy": {"enabled": False}})
    assert not [o for o in off if o["kind"] == "NetworkPolicy" and o["metadata"]["name"].endswith("-injected-pods")]


def test_notes_tell_how_to_opt_in_and_check():
    notes = render_notes()
    assert "kubectl label namespace NAMESPACE forge.dev/inject=enabled" in notes
    assert 'forge.dev/inject: "true"' in notes
    assert r"{.metadata.annotations.forge\.dev/injected}" in notes
    assert 'create the kubernetes.io/tls Secret "forge-sidecar-tls"' in notes


# ---- bad values fail at install with the path of the bad key


@pytest.mark.parametrize(
    "values, where",
    [
        ({"injector": {"replicas": 1}}, "/injector/replicas"),
        ({"webhook": {"failurePolicy": "fail"}}, "/webhook/failurePolicy"),
        ({"webhook": {"timeoutSeconds": 31}}, "/webhook/timeoutSeconds"),
        ({"webhook": {"onBadAnnotation": "ignore"}}, "/webhook/onBadAnnotation"),
        ({"sidecar": {"tls": {"secretName": ""}}}, "/sidecar/tls"),
        ({"sidecar": {"tls": {"certManager": {"issuer": "ca"}}}}, "/sidecar/tls"),
        ({"sidecar": {"portName": "MCP"}}, "/sidecar/portName"),
        ({"sidecar": {"portName": "8080"}}, "/sidecar/portName"),
        ({"sidecar": {"portName": "a-very-long-port-name"}}, "/sidecar/portName"),
        ({"sidecar": {"adminPort": 70000}}, "/sidecar/adminPort"),
        ({"sidecar": {"resources": {"requests": {"cpu": "lots"}, "limits": {}}}}, "/sidecar/resources/requests/cpu"),
        ({"sidecar": {"resources": {"requests": {"gpu": "1"}, "limits": {}}}}, "/sidecar/resources/requests"),
        ({"sidecar": {"stateVolume": {"emptyDir": {}, "hostPath": {"path": "/"}}}}, "/sidecar/stateVolume"),
        ({"image": {"digest": "sha256:short"}}, "/image/digest"),
        ({"image": {"pullPolicy": "always"}}, "/image/pullPolicy"),
        ({"targetNamespaces": ["Bad_NS"]}, "/targetNamespaces/0"),
        ({"targetNamespaces": ["a", "a"]}, "/targetNamespaces"),
        ({"signingKey": {"existingSecret": "Not A Name"}}, "/signingKey/existingSecret"),
        ({"plugins": {"configMaps": {"secrets": "Not A Name"}}}, "/plugins/configMaps/secrets"),
        ({"plugins": {"configMaps": {"Secrets": "team-secrets"}}}, "/plugins/configMaps"),
        ({"plugins": {"configMap": "team-detectors"}}, "configMap"),
        ({"injectr": {}}, "injectr"),
        ({"injector": {"replica": 3}}, "replica"),
    ],
)
def test_schema_rejects_bad_values_naming_the_key(values, where):
    import helm_python

    with pytest.raises(helm_python.HelmValuesError) as refused:
        render(values)
    assert where in str(refused.value)


@pytest.mark.parametrize(
    "values",
    [
        {"injector": {"replicas": 2}},
        {"webhook": {"failurePolicy": "Ignore", "timeoutSeconds": 30, "onBadAnnotation": "warn"}},
        {"sidecar": {"tls": {"secretName": "", "certManager": {"issuer": "ca", "issuerKind": "ClusterIssuer"}}}},
        {"sidecar": {"portName": "mcp-http"}},
        {"sidecar": {"resources": {"requests": {"cpu": 0.5, "memory": "1Gi"}, "limits": {"ephemeral-storage": "1Gi"}}}},
        {"sidecar": {"stateVolume": {"persistentVolumeClaim": {"claimName": "evidence"}}}},
        {"targetNamespaces": ["mcp-1", "tools"]},
        {"plugins": {"bundled": False, "configMaps": {"code-exec": "team-code-exec"}}},
        {"global": {"imageRegistry": "mirror.example"}},  # what Helm passes a subchart
    ],
)
def test_schema_accepts_the_near_misses(values):
    assert objects(values)
