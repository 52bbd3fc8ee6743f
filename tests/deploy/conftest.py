"""Shared pieces of the deployment tests: paths, chart rendering, running checkov."""

import functools
import json
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "forge"
EXAMPLES = sorted((REPO / "helm" / "examples").glob("*.yaml"))
RELEASE = "forge"
NAMESPACE = "forge-system"


def example_values(path):
    return yaml.safe_load(path.read_text()) or {}


# Every optional object on, in two target namespaces.
EVERYTHING_ON = {
    "targetNamespaces": ["mcp-a", "mcp-b"],
    "monitoring": {
        "serviceMonitor": {"enabled": True},
        "podMonitor": {"enabled": True},
        "prometheusRule": {"enabled": True},
    },
}
# The value sets the chart is linted, validated and scanned with.
SCENARIOS = {"default": None, "everything-on": EVERYTHING_ON} | {p.stem: example_values(p) for p in EXAMPLES}


@functools.lru_cache(maxsize=None)
def _rendered(values_json):
    import helm_python

    return helm_python.Chart.load(str(CHART)).render(json.loads(values_json), name=RELEASE, namespace=NAMESPACE)


def render_text(values=None):
    """The chart's templates for these values, rendered offline by the real Helm library
    (helm-python-sdk): {template path: text}. lookup finds nothing, as on a first
    install. Each set of values is rendered once per session: the chart generates RSA keys."""
    return _rendered(json.dumps(values, sort_keys=True))


def render(values=None):
    """{template path: [objects]} (NOTES.txt left out)."""
    return {
        path: [doc for doc in yaml.safe_load_all(text) if doc]
        for path, text in render_text(values).items()
        if not path.endswith("NOTES.txt")
    }


def render_notes(values=None):
    return render_text(values)["forge/templates/NOTES.txt"]


def objects(values=None):
    return [obj for docs in render(values).values() for obj in docs]


def find(objs, kind, name=None):
    found = [o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert found, f"no {kind} {name or ''} rendered"
    return found


def checkov(*args, timeout=240):
    """Runs checkov with the given arguments; returns its parsed JSON report(s) as a list."""
    cmd = [str(Path(__file__).parent / ".venv" / "checkov" / "bin" / "checkov"), "--compact", "-o", "json", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    assert done.returncode in (0, 1), f"checkov crashed ({done.returncode}): {done.stderr[-2000:]}"
    # One JSON document per scanned directory or file, each a report or a list of them.
    reports, decoder, text, at = [], json.JSONDecoder(), done.stdout.strip(), 0
    while at < len(text):
        doc, at = decoder.raw_decode(text, at)
        reports += doc if isinstance(doc, list) else [doc]
        while at < len(text) and text[at].isspace():
            at += 1
    return reports


def failed_checks(reports):
    return [
        f"{c['check_id']} {c['check_name']} — {c.get('resource')} ({c.get('file_path')})"
        for r in reports
        for c in r.get("results", {}).get("failed_checks", [])
    ]


def passed_count(reports):
    return sum(len(r.get("results", {}).get("passed_checks", [])) for r in reports)


@pytest.fixture(scope="session")
def default_objects():
    return objects()
