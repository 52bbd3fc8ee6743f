"""checkov over everything this repository deploys: the rendered chart (each example and the
defaults), terraform/, and the Dockerfile, with no failed check. Skips are listed here (or
inline in the scanned file, as `checkov:skip=ID: why`), each with its reason."""

import re
import shutil

import pytest
import yaml

from conftest import REPO, SCENARIOS, checkov, failed_checks, passed_count, render

# Chart checks that do not apply, by check id: (scenarios the skip is limited to, reason).
KUBERNETES_SKIPS = {
    "CKV_K8S_43": (
        {"default", "everything-on", "minimal", "cert-manager"},
        "Image should use digest: the chart cannot know the digest of the image you build; "
        "image.digest pins it, and the production example does (and is checked without this skip).",
    ),
    "CKV_K8S_15": (
        set(SCENARIOS),
        "Image pull policy Always: with a digest or an immutable tag IfNotPresent runs the same "
        "image, and Always would make every injector restart depend on the registry, while a "
        "down injector with failurePolicy Fail blocks pod creation.",
    ),
}


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    manifests = tmp_path_factory.mktemp("manifests")
    for name, values in SCENARIOS.items():
        docs = [doc for docs in render(values).values() for doc in docs]
        (manifests / f"{name}.yaml").write_text(yaml.safe_dump_all(docs))
    # checkov takes directories or files, not both: the Dockerfile gets a directory of its own.
    image = tmp_path_factory.mktemp("image")
    shutil.copy(REPO / "Dockerfile", image)
    # One run for all three frameworks: checkov's start-up is most of its time.
    found = checkov(
        "-d",
        str(manifests),
        "-d",
        str(REPO / "terraform"),
        "-d",
        str(image),
        "--framework",
        "kubernetes",
        "terraform",
        "dockerfile",
        "--skip-download",
    )
    merged = {}
    for report in found:
        into = merged.setdefault(
            report["check_type"], {"results": {"passed_checks": [], "failed_checks": [], "skipped_checks": []}}
        )
        for kind, checks in report.get("results", {}).items():
            into["results"].setdefault(kind, []).extend(checks)
    return merged


def test_rendered_chart_passes_checkov(reports):
    report = reports["kubernetes"]
    assert passed_count([report]) > 100
    unexpected = []
    for check in report["results"]["failed_checks"]:
        scenario = check["file_path"].rsplit("/", 1)[-1].removesuffix(".yaml")
        allowed, _reason = KUBERNETES_SKIPS.get(check["check_id"], (set(), ""))
        if scenario not in allowed:
            unexpected.append(f"{scenario}: {check['check_id']} {check['check_name']} — {check['resource']}")
    assert not unexpected, "\n".join(unexpected)


def test_production_example_pins_the_image_by_digest(reports):
    failed = [
        c for c in reports["kubernetes"]["results"]["failed_checks"] if c["file_path"].endswith("production.yaml")
    ]
    assert "CKV_K8S_43" not in {c["check_id"] for c in failed}


def test_terraform_passes_checkov(reports):
    report = reports["terraform"]
    assert passed_count([report]) > 20
    assert not failed_checks([report]), failed_checks([report])
    skipped = {c["check_id"] for c in report["results"]["skipped_checks"]}
    assert skipped == set(inline_skips(REPO / "terraform")), "every skip is an inline checkov:skip with a reason"


def inline_skips(root):
    """{check id: reason} of the `checkov:skip=ID: reason` comments under root."""
    found = {}
    for path in [root] if root.is_file() else root.rglob("*.tf"):
        for check, reason in re.findall(r"checkov:skip=(\w+):\s*(.+)", path.read_text()):
            assert len(reason.strip()) > 20, f"{path}: {check} needs a reason"
            found[check] = reason
    return found


def test_dockerfile_passes_checkov(reports):
    report = reports["dockerfile"]
    assert passed_count([report]) > 20
    assert not failed_checks([report]), failed_checks([report])
    skipped = {c["check_id"] for c in report["results"]["skipped_checks"]}
    assert skipped == set(inline_skips(REPO / "Dockerfile")) == {"CKV_DOCKER_2"}
