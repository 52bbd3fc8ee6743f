"""The chart and `forge webhook` together: the real webhook binary started exactly as the
chart's Deployment starts it, with the config file and the certificate the chart rendered,
answers an AdmissionReview over TLS that verifies against the chart's caBundle, and its patch
gives the pod the sidecar the chart's values describe. Skipped (saying so) when the forge
binary is not built or has no `webhook` command."""

import base64
import json
import os
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from http.client import HTTPSConnection

import jsonpatch
import kubernetes_validate
import pytest

from conftest import NAMESPACE, RELEASE, REPO, find, objects

SERVICE_HOST = f"{RELEASE}-injector.{NAMESPACE}.svc"


def forge_binary():
    path = os.environ.get("FORGE_BIN") or str(REPO / "target" / "debug" / "forge")
    if not os.access(path, os.X_OK):
        pytest.skip(f"no forge binary at {path} (cargo build, or set FORGE_BIN)")
    probe = subprocess.run([path, "webhook", "--help"], capture_output=True, timeout=30)
    if probe.returncode != 0:
        pytest.skip(f"{path} has no `webhook` command yet")
    return path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Webhook:
    """`forge webhook` with the chart's args, its config and certificate as the pod mounts them."""

    def __init__(self, binary, rendered, tmp_path):
        deployment = find(rendered, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]
        config = find(rendered, "ConfigMap", f"{RELEASE}-injector")[0]["data"]["config.yaml"]
        secret = find(rendered, "Secret", f"{RELEASE}-injector-tls")[0]["data"]
        mounts = {
            "/etc/forge-webhook/config.yaml": tmp_path / "config.yaml",
            "/etc/forge-webhook/tls": tmp_path / "tls",
        }
        (tmp_path / "tls").mkdir()
        (tmp_path / "config.yaml").write_text(config)
        for key in ("tls.crt", "tls.key"):
            (tmp_path / "tls" / key).write_bytes(base64.b64decode(secret[key]))
        self.ca = tmp_path / "ca.crt"
        self.ca.write_bytes(
            base64.b64decode(
                find(rendered, "MutatingWebhookConfiguration")[0]["webhooks"][0]["clientConfig"]["caBundle"]
            )
        )
        args = []
        for arg in deployment["args"]:
            for mounted, local in mounts.items():
                arg = arg.replace(mounted, str(local))
            args.append(arg)
        # The chart's --listen 0.0.0.0:9443 becomes a loopback port here.
        self.port, self.admin = free_port(), free_port()
        args[args.index("--listen") + 1] = f"127.0.0.1:{self.port}"
        args += ["--admin-listen", f"127.0.0.1:{self.admin}"]
        self.process = subprocess.Popen([binary, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"forge webhook exited: {self.process.stderr.read().decode()[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.admin}/readyz", timeout=2) as ready:
                    if ready.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.1)
        self.stop()
        raise AssertionError("forge webhook did not become ready in 30 s")

    def review(self, pod, namespace="mcp"):
        # Connect to loopback but verify the certificate as the API server does: against the
        # caBundle, by the Service's DNS name (the connection is made here, so no DNS lookup).
        context = ssl.create_default_context(cafile=str(self.ca))
        conn = HTTPSConnection(SERVICE_HOST, self.port, context=context, timeout=10)
        raw = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        conn.sock = context.wrap_socket(raw, server_hostname=SERVICE_HOST)
        body = {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "3f1c2a9e-chart-test",
                "kind": {"group": "", "version": "v1", "kind": "Pod"},
                "resource": {"group": "", "version": "v1", "resource": "pods"},
                "namespace": namespace,
                "operation": "CREATE",
                "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
                "object": pod,
            },
        }
        conn.request("POST", "/mutate", json.dumps(body), {"content-type": "application/json"})
        answer = conn.getresponse()
        assert answer.status == 200, answer.read()
        return json.loads(answer.read())["response"]

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


def mcp_pod(annotations=None):
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "mcp-0",
            "namespace": "mcp",
            "labels": {"app": "mcp", "forge.dev/inject": "true"},
            "annotations": annotations or {},
        },
        "spec": {
            "containers": [
                {
                    "name": "server",
                    "image": "ghcr.io/example/mcp-server:1.4",
                    "ports": [{"name": "mcp", "containerPort": 3000, "protocol": "TCP"}],
                }
            ]
        },
    }


@pytest.fixture
def webhook(request, tmp_path):
    binary = forge_binary()
    started = Webhook(binary, objects(request.param), tmp_path)
    yield started
    started.stop()


CHART_VALUES = {"targetNamespaces": ["mcp"]}


@pytest.mark.parametrize("webhook", [CHART_VALUES], indirect=True)
def test_the_webhook_injects_what_the_chart_configured(webhook):
    pod = mcp_pod()
    response = webhook.review(pod)
    assert response["allowed"] and response["patchType"] == "JSONPatch"
    patched = jsonpatch.apply_patch(pod, json.loads(base64.b64decode(response["patch"])))
    kubernetes_validate.validate(patched, kubernetes_validate.latest_version(), strict=True)
    sidecar = next(c for c in patched["spec"]["containers"] if c["name"] == "forge")
    assert sidecar["image"] == "ghcr.io/forge/forge:0.1.0"
    assert {p["name"] for p in sidecar["ports"]} == {"mcp", "forge-admin"}
    volumes = {v["name"]: v for v in patched["spec"]["volumes"]}
    # Exactly the objects the chart renders into the namespace.
    rendered = objects(CHART_VALUES)
    assert (
        volumes["forge-policy"]["configMap"]["name"]
        == find(rendered, "ConfigMap", f"{RELEASE}-policy")[0]["metadata"]["name"]
    )
    assert (
        volumes["forge-keys"]["secret"]["secretName"]
        == find(rendered, "Secret", f"{RELEASE}-signing-key")[0]["metadata"]["name"]
    )
    assert volumes["forge-tls"]["secret"]["secretName"] == "forge-sidecar-tls"
    assert patched["metadata"]["annotations"]["forge.dev/injected"]
    # The sidecar is told which file of the key Secret signs, and where its detectors are.
    env = {e["name"]: e["value"] for e in sidecar["env"]}
    assert env["FORGE_EVIDENCE_KEY"] == "/etc/forge/keys/signing-key.pem"
    assert env["FORGE_PLUGINS_DIR"] == "/etc/forge/plugins"
    # The chart's NetworkPolicy selects the injected pod by the label the webhook adds.
    (policy,) = find(rendered, "NetworkPolicy", f"{RELEASE}-injected-pods")
    (selector,) = policy["spec"]["podSelector"]["matchExpressions"]
    assert selector["operator"] == "Exists" and selector["key"] in patched["metadata"]["labels"]


@pytest.mark.parametrize("webhook", [CHART_VALUES], indirect=True)
def test_a_bad_annotation_is_refused_as_the_chart_says(webhook):
    response = webhook.review(mcp_pod({"forge.dev/mode": "permissive"}))
    assert response["allowed"] is False
    assert "forge.dev/mode" in response["status"]["message"]


@pytest.mark.parametrize("webhook", [CHART_VALUES | {"webhook": {"onBadAnnotation": "warn"}}], indirect=True)
def test_with_warn_a_bad_annotation_admits_the_pod_unchanged(webhook):
    response = webhook.review(mcp_pod({"forge.dev/mode": "permissive"}))
    assert response["allowed"] is True and "patch" not in response
    assert any("forge.dev/mode" in w for w in response["warnings"])


def test_tls_is_verified_by_the_service_name_only(tmp_path):
    """The near-miss: the same certificate does not verify for another host name."""
    binary = forge_binary()
    started = Webhook(binary, objects(CHART_VALUES), tmp_path)
    try:
        context = ssl.create_default_context(cafile=str(started.ca))
        with pytest.raises(ssl.SSLCertVerificationError):
            context.wrap_socket(
                socket.create_connection(("127.0.0.1", started.port), timeout=10), server_hostname="evil.example"
            ).close()
    finally:
        started.stop()
