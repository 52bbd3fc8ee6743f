"""The Dockerfile, checked statically (no container engine runs on these machines): a
multi-stage build to a minimal runtime that runs `forge` as uid 65532 with what the chart and
the webhook expect inside it. checkov's Dockerfile checks are in test_checkov.py."""

import json
import re
import tomllib

import yaml

from conftest import CHART, REPO

DOCKERFILE = REPO / "Dockerfile"


def instructions():
    """[(INSTRUCTION, arguments)] with continuation lines joined and comments dropped."""
    lines, current = [], ""
    for raw in DOCKERFILE.read_text().splitlines():
        if not current and (raw.lstrip().startswith("#") or not raw.strip()):
            continue
        current += raw.rstrip()
        if current.endswith("\\"):
            current = current[:-1] + " "
            continue
        instruction, _, args = current.strip().partition(" ")
        lines.append((instruction.upper(), args.strip()))
        current = ""
    return lines


def stages():
    """The build stages' instructions (ARGs before the first FROM are global, not a stage)."""
    found = []
    for instruction, args in instructions():
        if instruction == "FROM":
            found.append([])
        if found:
            found[-1].append((instruction, args))
    return found


def test_parser_reads_the_file():
    assert len(instructions()) > 10
    assert instructions()[0] == ("ARG", "RUST_VERSION=1.95")


def test_multi_stage_build_to_a_minimal_runtime():
    build, runtime = stages()
    assert build[0][1].startswith("rust:${RUST_VERSION}") and build[0][1].endswith(" AS build")
    assert runtime[0] == ("FROM", "gcr.io/distroless/cc-debian12:nonroot")
    # Nothing of the toolchain reaches the runtime: it only copies from the build stage.
    copies = [args for instruction, args in runtime if instruction == "COPY"]
    assert copies and all(args.startswith("--from=build ") for args in copies)
    assert not [i for i, _ in runtime if i in ("RUN", "ADD")]


def test_the_build_is_locked_and_the_tag_is_not_latest():
    text = DOCKERFILE.read_text()
    assert "cargo build --release --locked --bin forge" in text
    assert ":latest" not in text


def test_runs_forge_as_non_root_65532():
    runtime = stages()[-1]
    users = [args for instruction, args in runtime if instruction == "USER"]
    assert users == ["65532:65532"]
    (entrypoint,) = [json.loads(args) for instruction, args in runtime if instruction == "ENTRYPOINT"]
    assert entrypoint == ["/usr/local/bin/forge"]
    # The webhook starts the sidecar as /usr/local/bin/forge with uid 65532 (src/webhook/patch.rs).
    patch = REPO / "src" / "webhook" / "patch.rs"
    if patch.exists():
        text = patch.read_text()
        assert 'BINARY: &str = "/usr/local/bin/forge"' in text and "SIDECAR_UID: u64 = 65532" in text


def test_image_holds_the_policy_bundle_plugins_and_a_writable_state_dir():
    text = DOCKERFILE.read_text()
    assert "cp policies/*.rego policies/*.yaml policies/*.json /out/etc/forge/policies/" in text
    assert "wasm-plugins/build.sh && cp -a wasm-plugins/dist/. /out/etc/forge/plugins/" in text
    assert ("WORKDIR", "/etc/forge") in stages()[-1]
    assert "COPY --from=build --chown=65532:65532 /out/var/lib/forge /var/lib/forge" in text
    env = " ".join(args for instruction, args in stages()[-1] if instruction == "ENV")
    assert "FORGE_STATE_DIR=/var/lib/forge" in env and "FORGE_POLICY_BUNDLE=/etc/forge/policies" in env
    # plugins.directory has no default: without this the shipped detectors would not run.
    assert "FORGE_PLUGINS_DIR=/etc/forge/plugins" in env


def test_exposes_the_ports_the_chart_uses():
    (exposed,) = [args.split() for instruction, args in stages()[-1] if instruction == "EXPOSE"]
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert {str(values["sidecar"]["listenPort"]), str(values["sidecar"]["adminPort"])} == set(exposed)


def test_chart_default_tag_is_this_builds_version():
    """The chart's image tag defaults to appVersion: the crate version the Dockerfile builds."""
    crate = tomllib.loads((REPO / "Cargo.toml").read_text())["package"]["version"]
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["appVersion"] == crate


def test_build_context_leaves_out_build_outputs_and_tools():
    ignored = set((REPO / ".dockerignore").read_text().split())
    assert {".git", "**/target", "**/node_modules", "**/.venv"} <= ignored
    assert not {"policies", "src", "Cargo.lock"} & ignored


def test_rust_version_matches_the_toolchain_the_project_builds_with():
    wanted = re.search(r"ARG RUST_VERSION=(\S+)", DOCKERFILE.read_text()).group(1)
    cargo = tomllib.loads((REPO / "Cargo.toml").read_text())["package"].get("rust-version")
    if cargo:
        assert tuple(map(int, wanted.split("."))) >= tuple(map(int, cargo.split(".")[:2]))
