#!/usr/bin/env python3
"""Forge load harness driver. Run it through bench/run.sh (see bench/README.md).

Measures, in one run and on this machine, an MCP tools/call POST
  (a) direct to an upstream (plain HTTP),
  (b) through nginx as a plain TLS-terminating reverse proxy,
  (c) through the Forge gateway over TLS, passing through (no authentication, no policy),
  (d) through the Forge gateway over TLS with a bearer JWT (ES256) verified on every
      request and the default policy bundle enforcing,
  (e) as (d), plus the four shipped WASM detectors (wasm-plugins/dist) and evidence on —
      the full pipeline, checked against its targets (p99 added <= 2 ms at 1,000 req/s,
      saturation >= 25% of nginx, on the 1 KiB upstream),
for three upstreams (nginx canned 1 KiB / 16 KiB result, official TS SDK v1
server), at fixed request rates (latency percentiles, coordinated-omission
corrected) and at saturation (max req/s), plus the proxies' CPU time per
request and peak RSS. Writes bench/results/latest.md and latest.json.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import http.client
import json
import os
import platform
import re
import resource
import shlex
import shutil
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent.parent
REPO_DIR = BENCH_DIR.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")

MCP_PATH = "/mcp"
REQUEST_BODY = (
    '{"jsonrpc":"2.0","id":1,"method":"tools/call",'
    '"params":{"name":"echo","arguments":{"text":"hi"}}}'
)
CONTENT_TYPE = "application/json"
ACCEPT = "application/json, text/event-stream"
EXTRA_HEADERS = [
    ("MCP-Protocol-Version", "2025-06-18"),
    ("Mcp-Method", "tools/call"),
    ("Mcp-Name", "echo"),
]

TARGETS = ["direct", "nginx", "forge", "forge-auth", "forge-full"]
TARGET_LABEL = {
    "direct": "(a) direct",
    "nginx": "(b) nginx TLS proxy",
    "forge": "(c) Forge TLS pass-through",
    "forge-auth": "(d) Forge TLS+JWT+policy",
    "forge-full": "(e) Forge full: TLS+JWT+policy+4 detectors+evidence",
}
GATEWAYS = ["forge", "forge-auth", "forge-full"]
# Path (e)'s targets (issue 5): on the 1 KiB upstream, p99 added latency at 1,000 req/s and
# saturation throughput relative to (b) nginx in the same run.
FULL_P99_ADDED_MAX_S = 0.002
FULL_SAT_MIN_OF_NGINX = 0.25
# Path (d): what the bench's token says and who must accept it.
JWT_ISSUER = "https://idp.forge-bench.example"
JWT_RESOURCE = "https://forge-bench.example/mcp"
UPSTREAMS = ["fast-1k", "fast-16k", "sdk"]
UPSTREAM_LABEL = {
    "fast-1k": "nginx canned 1 KiB",
    "fast-16k": "nginx canned 16 KiB",
    "sdk": "TS SDK v1 server",
}
BODY_SIZES = {"fast-1k": 1024, "fast-16k": 16384}
FULL_DETECTORS = ["secrets", "pii", "code-exec", "tool-poisoning"]

PROFILES = {
    "full": {
        "rates": [100, 1000, 5000],
        "sdk_rates": [100, 1000],
        "rate_duration": {100: 15, 1000: 10, 5000: 10},
        "default_rate_duration": 10,
        "rate_conns": 32,
        "sat_conns": [4, 16, 64],
        "sat_duration": 8,
        "warmup": 2,
        "skip": 2,
        "handshake_duration": 10,
    },
    "quick": {
        "rates": [100, 1000, 5000],
        "sdk_rates": [100, 1000],
        "rate_duration": {},
        "default_rate_duration": 2,
        "rate_conns": 32,
        "sat_conns": [16],
        "sat_duration": 2,
        "warmup": 0.5,
        "skip": 0.5,
        "handshake_duration": 2,
    },
}

# A run is flagged as noisy when processes outside the bench used more than
# this fraction of one core during it (other builds/tests on the machine), or when
# the hypervisor took that much (steal time: on this VM it reached 0.4 of a core in
# runs with nothing else on the box, and slows every path alike).
NOISE_THRESHOLD = 0.10


def log(msg: str) -> None:
    ts = dt.datetime.now().strftime("%H:%M:%S")
    print(f"[bench {ts}] {msg}", file=sys.stderr, flush=True)


class BenchError(Exception):
    pass


# --------------------------------------------------------------------------
# /proc helpers


def proc_stat(pid: int) -> dict | None:
    """utime/stime (ticks), ppid, session of a process, or None if gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    rest = raw[raw.rindex(")") + 2 :].split()
    # rest[0] is field 3 (state); field N is rest[N - 3].
    return {
        "ppid": int(rest[1]),
        "session": int(rest[3]),
        "utime": int(rest[11]),
        "stime": int(rest[12]),
        "cutime": int(rest[13]),
        "cstime": int(rest[14]),
    }


def proc_status(pid: int) -> dict:
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, val = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                out[key] = int(val.split()[0])  # kB
            elif key == "Threads":
                out[key] = int(val.strip())
    except OSError:
        pass
    return out


def all_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def session_pids(sid: int) -> list[int]:
    pids = []
    for pid in all_pids():
        st = proc_stat(pid)
        if st and st["session"] == sid:
            pids.append(pid)
    return pids


def system_ticks() -> dict:
    """Whole-machine jiffies from /proc/stat (summed over CPUs)."""
    v = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    user, nice, system, idle, iowait, irq, softirq, steal = v
    return {"task": user + nice + system, "irq": irq + softirq, "steal": steal,
            "total": sum(v)}


# --------------------------------------------------------------------------
# processes we start


class Service:
    """A process started in its own session, so that it and its children
    (nginx workers) can be stopped by its process-group id."""

    def __init__(self, name: str, argv: list[str], logfile: Path, cwd: Path | None = None,
                 env: dict | None = None, cpus: str = ""):
        self.name = name
        self.argv = (["taskset", "-c", cpus] if cpus else []) + argv
        SERVICE_COMMANDS.setdefault(name, shlex.join(self.argv))
        self.logfile = logfile
        self._log = open(logfile, "ab")
        self.proc = subprocess.Popen(
            self.argv, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            cwd=cwd, env=env, start_new_session=True,
        )
        self.pid = self.proc.pid
        RUNNING.append(self)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def pids(self) -> list[int]:
        """The leader plus every process in its session (nginx workers)."""
        if not self.alive():
            return []
        return session_pids(self.pid)

    def worker_pids(self) -> list[int]:
        """Processes doing the work: the children if any (nginx), else the leader."""
        kids = [p for p in self.pids() if p != self.pid]
        return kids or ([self.pid] if self.alive() else [])

    def cpu_ticks_by_pid(self) -> dict[int, int]:
        out = {}
        for pid in self.pids():
            st = proc_stat(pid)
            if st:
                out[pid] = st["utime"] + st["stime"]
        return out

    def cpu_ticks(self) -> int:
        total = 0
        for pid in self.pids():
            st = proc_stat(pid)
            if st:
                total += st["utime"] + st["stime"]
        return total

    def memory(self) -> dict:
        """Peak (VmHWM) and current RSS in kB, summed over the session."""
        hwm = rss = 0
        threads = 0
        for pid in self.pids():
            s = proc_status(pid)
            hwm += s.get("VmHWM", 0)
            rss += s.get("VmRSS", 0)
            threads += s.get("Threads", 0)
        return {"vm_hwm_kb": hwm, "vm_rss_kb": rss, "threads": threads,
                "processes": len(self.pids())}

    def tail(self, n: int = 30) -> str:
        try:
            lines = self.logfile.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])

    def stop(self) -> None:
        if self in RUNNING:
            RUNNING.remove(self)
        if self.proc.poll() is None:
            try:
                os.killpg(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        # Anything left in the group (e.g. nginx workers) is killed too.
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self._log.close()


RUNNING: list[Service] = []
SERVICE_COMMANDS: dict[str, str] = {}


def stop_all() -> None:
    for svc in list(reversed(RUNNING)):
        try:
            svc.stop()
        except Exception as exc:  # keep stopping the others
            log(f"stopping {svc.name}: {exc}")


def _on_signal(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


# --------------------------------------------------------------------------
# small utilities


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def which(name: str, extra: list[Path] = ()) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for d in extra:
        cand = d / name
        if cand.is_file() and os.access(cand, os.X_OK):
            return str(cand)
    return None


def cmd_output(argv: list[str]) -> str:
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=20)
        return (r.stdout + r.stderr).strip()
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unavailable ({exc})"


def render(template: Path, out: Path, values: dict) -> None:
    text = template.read_text()
    for key, val in values.items():
        text = text.replace(f"@@{key}@@", str(val))
    left = re.findall(r"@@[A-Z0-9_]+@@", text)
    if left:
        raise BenchError(f"unrendered placeholders {sorted(set(left))} in {template}")
    out.write_text(text)


def canned_body(size: int) -> bytes:
    """A tools/call JSON-RPC result of exactly `size` bytes."""
    def build(pad: int) -> bytes:
        doc = {
            "jsonrpc": "2.0",
            "id": 1,
            "result": {
                "content": [{"type": "text", "text": "x" * pad}],
                "isError": False,
            },
        }
        return json.dumps(doc, separators=(",", ":")).encode()

    base = len(build(0))
    body = build(size - base)
    assert len(body) == size, (len(body), size)
    return body


def http_request(url_host: str, port: int, tls: bool, method: str, path: str,
                 body: str | None = None, headers: list | None = None,
                 cafile: str | None = None, timeout: float = 5.0):
    if tls:
        ctx = ssl.create_default_context(cafile=cafile)
        conn = http.client.HTTPSConnection(url_host, port, timeout=timeout, context=ctx)
    else:
        conn = http.client.HTTPConnection(url_host, port, timeout=timeout)
    try:
        hdrs = dict(headers or [])
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, dict(resp.getheaders()), data
    finally:
        conn.close()


def mcp_headers() -> list:
    return [("Content-Type", CONTENT_TYPE), ("Accept", ACCEPT)] + EXTRA_HEADERS


def wait_until(pred, timeout: float, what: str, svc: Service | None = None,
               interval: float = 0.1):
    deadline = time.monotonic() + timeout
    last_exc = None
    while time.monotonic() < deadline:
        if svc is not None and not svc.alive():
            raise BenchError(f"{what}: process exited (code {svc.proc.returncode}); "
                             f"log tail:\n{svc.tail()}")
        try:
            if pred():
                return
        except Exception as exc:  # connection refused etc.
            last_exc = exc
        time.sleep(interval)
    raise BenchError(f"{what}: not ready after {timeout}s ({last_exc})")


# --------------------------------------------------------------------------
# the harness


class Harness:
    def __init__(self, args):
        self.args = args
        self.profile = dict(PROFILES["quick" if args.quick else "full"])
        if args.rates:
            self.profile["rates"] = [int(x) for x in args.rates.split(",")]
        if args.sdk_rates is not None:
            self.profile["sdk_rates"] = [int(x) for x in args.sdk_rates.split(",") if x]
        if args.sat_conns:
            self.profile["sat_conns"] = [int(x) for x in args.sat_conns.split(",")]
        self.upstreams = [u for u in UPSTREAMS if u not in (args.skip_upstream or [])]
        self.tmp = Path(tempfile.mkdtemp(prefix="forge-bench-"))
        os.chmod(self.tmp, 0o755)  # nginx workers run as `nobody` when we are root
        (self.tmp / "logs").mkdir()
        os.chmod(self.tmp / "logs", 0o755)
        (self.tmp / "db").mkdir()
        self.results_dir = Path(args.out).resolve()
        self.runs: list[dict] = []
        self.notes: list[str] = []
        self.gateway: dict = {"status": "not attempted", "instances": {}}
        self.start_wall = time.monotonic()
        self.deadline = self.start_wall + args.max_minutes * 60
        self.nginx_proxy: Service | None = None
        self.nginx_upstream: Service | None = None
        self.sdk: Service | None = None
        self.tools: dict = {}
        self.ports: dict = {}
        # The gateways serving the upstream being measured, by target.
        self.gateways: dict[str, Service] = {}
        self.token: str | None = None
        self.idle_waited = 0.0

    # ---------------- setup

    def find_tools(self):
        cargo_bin = Path.home() / ".cargo" / "bin"
        need = {
            "nginx": which("nginx", [Path("/usr/sbin")]),
            "oha": which("oha", [cargo_bin]),
            "openssl": which("openssl"),
            "node": which("node"),
            "taskset": which("taskset"),
        }
        missing = [k for k, v in need.items() if not v]
        if missing:
            raise BenchError(f"missing tools: {', '.join(missing)} -- run bench/install.sh")
        sdk_dir = BENCH_DIR / "sdk-upstream"
        if "sdk" in self.upstreams and not (sdk_dir / "node_modules" / "@modelcontextprotocol"
                                            / "sdk" / "package.json").is_file():
            raise BenchError("bench/sdk-upstream/node_modules missing -- run bench/install.sh")
        self.tools = need

    def loadgen_prefix(self) -> list[str]:
        cpus = self.args.loadgen_cpus
        return ["taskset", "-c", cpus] if cpus else []

    def make_cert(self):
        """A throwaway CA and a P-256 server certificate for 127.0.0.1/localhost
        signed by it. rustls (oha, Forge) rejects a self-signed certificate that
        is its own trust anchor (CaUsedAsEndEntity), so the server cert is a
        proper leaf and clients trust the CA."""
        # Own directory: Forge watches the directory holding its cert and key,
        # so unrelated files written next to them (logs) must not live there.
        t = self.tmp / "tls"
        t.mkdir(exist_ok=True)
        os.chmod(t, 0o755)
        self.ca = t / "ca.pem"
        self.cert = t / "cert.pem"
        self.key = t / "key.pem"
        ext = t / "leaf.ext"
        ext.write_text(
            "basicConstraints=critical,CA:FALSE\n"
            "keyUsage=critical,digitalSignature\n"
            "extendedKeyUsage=serverAuth\n"
            "subjectAltName=DNS:localhost,IP:127.0.0.1\n")
        ossl = self.tools["openssl"]
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        cmds = [
            [ossl, "req", "-x509", *ec, "-days", "2", "-subj", "/CN=forge-bench CA",
             "-keyout", str(t / "ca-key.pem"), "-out", str(self.ca)],
            [ossl, "req", *ec, "-subj", "/CN=localhost",
             "-keyout", str(self.key), "-out", str(t / "leaf.csr")],
            [ossl, "x509", "-req", "-in", str(t / "leaf.csr"), "-CA", str(self.ca),
             "-CAkey", str(t / "ca-key.pem"), "-CAcreateserial", "-days", "2",
             "-extfile", str(ext), "-out", str(self.cert)],
        ]
        for argv in cmds:
            r = subprocess.run(argv, capture_output=True, text=True)
            if r.returncode != 0:
                raise BenchError(f"openssl failed: {shlex.join(argv)}: {r.stderr}")
        os.chmod(self.key, 0o644)
        self.cert_cmd = " && ".join(shlex.join(a) for a in cmds)

    def make_token(self):
        """An ES256 key (openssl) and one bearer token signed with it for path (d): the
        developer role, valid for longer than any run. The gateway trusts the public key."""
        t = self.tmp / "tls"
        ossl = self.tools["openssl"]
        key, self.jwt_pub = t / "jwt-key.pem", t / "jwt-pub.pem"
        for argv in ([ossl, "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(key)],
                     [ossl, "ec", "-in", str(key), "-pubout", "-out", str(self.jwt_pub)]):
            r = subprocess.run(argv, capture_output=True, text=True)
            if r.returncode != 0:
                raise BenchError(f"openssl failed: {shlex.join(argv)}: {r.stderr}")
        b64 = lambda raw: base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
        now = int(time.time())
        claims = {"iss": JWT_ISSUER, "sub": "bench", "aud": JWT_RESOURCE, "iat": now,
                  "exp": now + 6 * 3600, "roles": ["developer"]}
        signing_input = (b64(json.dumps({"alg": "ES256", "typ": "JWT"}).encode()) + "." +
                         b64(json.dumps(claims).encode()))
        r = subprocess.run([ossl, "dgst", "-sha256", "-sign", str(key)], input=signing_input.encode(),
                           capture_output=True)
        if r.returncode != 0:
            raise BenchError(f"openssl dgst -sign failed: {r.stderr.decode()}")
        self.token = signing_input + "." + b64(ecdsa_der_to_jws(r.stdout))

    def start_upstreams(self):
        (self.tmp / "nginx-tmp").mkdir(exist_ok=True)
        for name, size in BODY_SIZES.items():
            path = self.tmp / f"body-{name.split('-')[1]}.json"
            path.write_bytes(canned_body(size))
            os.chmod(path, 0o644)
        self.ports["up_fast-1k"] = free_port()
        self.ports["up_fast-16k"] = free_port()
        conf = self.tmp / "nginx-upstream.conf"
        render(BENCH_DIR / "nginx-upstream.conf.tmpl", conf, {
            "DIR": self.tmp, "WORKERS": self.args.upstream_workers,
            "PORT_1K": self.ports["up_fast-1k"], "PORT_16K": self.ports["up_fast-16k"],
        })
        self.nginx_upstream = Service(
            "nginx-upstream",
            [self.tools["nginx"], "-p", str(self.tmp), "-e", str(self.tmp / "upstream-startup.log"),
             "-c", str(conf)],
            self.tmp / "logs" / "nginx-upstream.out", cpus=self.args.server_cpus)
        for u in ("fast-1k", "fast-16k"):
            port = self.ports[f"up_{u}"]
            wait_until(lambda: http_request("127.0.0.1", port, False, "POST", MCP_PATH,
                                            REQUEST_BODY, mcp_headers())[0] == 200,
                       15, f"nginx upstream {u}", self.nginx_upstream)

        self.ports["up_sdk"] = free_port()
        if "sdk" in self.upstreams:
            self.sdk = Service(
                "sdk-upstream",
                [self.tools["node"], "server.mjs", "--port", str(self.ports["up_sdk"])],
                self.tmp / "logs" / "sdk-upstream.out", cwd=BENCH_DIR / "sdk-upstream",
                cpus=self.args.server_cpus)
            port = self.ports["up_sdk"]
            wait_until(lambda: http_request("127.0.0.1", port, False, "GET", "/healthz")[0] == 200,
                       30, "SDK upstream", self.sdk)

    def start_nginx_proxy(self):
        for u in UPSTREAMS:
            self.ports[f"nginx_{u}"] = free_port()
        conf = self.tmp / "nginx-proxy.conf"
        render(BENCH_DIR / "nginx-proxy.conf.tmpl", conf, {
            "DIR": self.tmp, "WORKERS": self.args.proxy_workers,
            "ACCESS_LOG": (self.tmp / "logs" / "proxy-access.log") if self.args.access_log == "on"
            else "off",
            "CERT": self.cert, "KEY": self.key,
            "UP_1K": self.ports["up_fast-1k"], "UP_16K": self.ports["up_fast-16k"],
            "UP_SDK": self.ports["up_sdk"],
            "PORT_1K": self.ports["nginx_fast-1k"], "PORT_16K": self.ports["nginx_fast-16k"],
            "PORT_SDK": self.ports["nginx_sdk"],
        })
        self.nginx_proxy = Service(
            "nginx-proxy",
            [self.tools["nginx"], "-p", str(self.tmp), "-e", str(self.tmp / "proxy-startup.log"),
             "-c", str(conf)],
            self.tmp / "logs" / "nginx-proxy.out", cpus=self.args.server_cpus)
        port = self.ports["nginx_fast-1k"]
        wait_until(lambda: http_request("127.0.0.1", port, True, "POST", MCP_PATH, REQUEST_BODY,
                                        mcp_headers(), cafile=str(self.ca))[0] == 200,
                   15, "nginx TLS proxy", self.nginx_proxy)

    # ---------------- gateway

    def gateway_bin(self) -> Path | None:
        p = Path(self.args.gateway_bin) if self.args.gateway_bin else REPO_DIR / "target/release/forge"
        if not p.is_file() or not os.access(p, os.X_OK):
            self.gateway["status"] = f"skipped: no gateway binary at {p} (build: cargo build --release)"
            return None
        return p

    def gateway_env(self) -> dict:
        env = dict(os.environ)
        if self.args.access_log == "off" and "RUST_LOG" not in os.environ:
            # Like nginx's `access_log off`: keep Forge's other logs, drop the
            # per-request line.
            env["RUST_LOG"] = "info,forge::access=off"
        return env

    def gateway_config(self, target: str) -> Path:
        """(c) passes through: no authentication, no policy. (d) requires the bench's token
        and enforces the repository's default bundle."""
        path = self.tmp / f"{target}.yaml"
        # (c) and (d) switch off what later issues added and made default (detectors,
        # evidence), so each path measures only what its name says.
        later_stages = "plugins:\n  shipped: false\nevidence:\n  enabled: false\n"
        if target == "forge-full":
            # (e): (d) plus the four shipped detectors and evidence (on by default; explicit
            # here so the path means the same whatever the defaults become).
            path.write_text(
                "auth:\n  mode: required\n"
                f"  resource: {JWT_RESOURCE}\n"
                f"  token_cache:\n    enabled: {'false' if self.args.no_token_cache else 'true'}\n"
                f"  issuers:\n    - issuer: {JWT_ISSUER}\n      pem: {self.jwt_pub}\n"
                f"policy:\n  bundle: {REPO_DIR / 'policies'}\n  mode: enforce\n"
                f"plugins:\n  enabled: true\n  directory: {self.args.plugins_dir}\n  reload: false\n"
                "evidence:\n  enabled: true\n")
        elif target == "forge":
            path.write_text("policy:\n  enabled: false\n" + later_stages)
        else:
            path.write_text(
                "auth:\n  mode: required\n"
                f"  resource: {JWT_RESOURCE}\n"
                f"  token_cache:\n    enabled: {'false' if self.args.no_token_cache else 'true'}\n"
                f"  issuers:\n    - issuer: {JWT_ISSUER}\n      pem: {self.jwt_pub}\n"
                f"policy:\n  bundle: {REPO_DIR / 'policies'}\n  mode: enforce\n" + later_stages)
        return path

    def start_gateway(self, upstream: str, target: str) -> Service | None:
        binary = self.gateway_bin()
        if binary is None:
            return None
        if "binary" not in self.gateway:
            st = binary.stat()
            self.gateway["binary"] = {
                "path": str(binary),
                "sha256": hashlib.sha256(binary.read_bytes()).hexdigest()[:16],
                "mtime": dt.datetime.fromtimestamp(st.st_mtime, dt.timezone.utc)
                .isoformat(timespec="seconds"),
                "git_head": cmd_output(["git", "-C", str(REPO_DIR), "rev-parse", "--short", "HEAD"]),
            }
        port, aport = free_port(), free_port()
        state = self.tmp / f"{target}-state-{upstream}"
        state.mkdir(exist_ok=True)
        argv = [
            str(binary), "run",
            "--listen", f"127.0.0.1:{port}",
            "--admin-listen", f"127.0.0.1:{aport}",
            "--upstream", f"http://127.0.0.1:{self.ports['up_' + upstream]}{MCP_PATH}",
            "--state-dir", str(state),
            "--tls-cert", str(self.cert), "--tls-key", str(self.key),
            "--config", str(self.gateway_config(target)),
        ] + list(self.args.gateway_arg or [])
        env = self.gateway_env()
        inst = {"argv": shlex.join(argv), "status": "starting", "upstream": upstream, "target": target,
                "env": {k: env[k] for k in ("RUST_LOG",) if k in env}}
        self.gateway["instances"][f"{target}:{upstream}"] = inst
        svc = Service(f"{target}-{upstream}", argv, self.tmp / "logs" / f"{target}-{upstream}.out",
                      env=self.gateway_env(),
                      cpus=self.args.server_cpus)
        try:
            wait_until(lambda: http_request("127.0.0.1", aport, False, "GET", "/readyz")[0] == 200,
                       self.args.gateway_ready_timeout, f"Forge gateway ({upstream}) /readyz", svc,
                       interval=0.2)
            status, headers, data = http_request("127.0.0.1", port, True, "POST", MCP_PATH,
                                                 REQUEST_BODY, mcp_headers() + self.auth_headers(target),
                                                 cafile=str(self.ca))
            if status != 200 or b'"error"' in data[:200]:
                raise BenchError(f"Forge gateway ({target}, {upstream}): tools/call returned HTTP "
                                 f"{status}: {data[:300]!r}")
            inst["sanity_response_bytes"] = len(data)
        except BenchError as exc:
            inst["status"] = f"failed: {exc}"
            if self.gateway["status"] != "ok":
                self.gateway["status"] = ("failed to start or answer; its column skipped — "
                                          "see the Forge rows under Exact commands")
            inst["log_tail"] = svc.tail()
            log(f"{TARGET_LABEL[target]} skipped for {upstream}: {exc}")
            svc.stop()
            return None
        inst["status"] = "ok"
        inst["pid"] = svc.pid
        self.ports[f"{target}_{upstream}"] = port
        self.gateway["status"] = "ok"
        return svc

    def auth_headers(self, target: str) -> list:
        return [("Authorization", f"Bearer {self.token}")] if target in ("forge-auth", "forge-full") else []

    # ---------------- load generation

    def base_oha(self) -> list[str]:
        argv = self.loadgen_prefix() + [
            self.tools["oha"], "--no-tui", "--output-format", "json",
            "--worker-threads", str(self.args.loadgen_threads),
            "-m", "POST", "-d", REQUEST_BODY, "-T", CONTENT_TYPE, "-A", ACCEPT,
            "-t", "10s",
        ]
        for k, v in EXTRA_HEADERS:
            argv += ["-H", f"{k}: {v}"]
        return argv

    def url(self, target: str, upstream: str) -> str:
        if target == "direct":
            return f"http://127.0.0.1:{self.ports['up_' + upstream]}{MCP_PATH}"
        return f"https://127.0.0.1:{self.ports[target + '_' + upstream]}{MCP_PATH}"

    def oha_argv(self, kind: str, target: str, upstream: str, duration: float,
                 rate: int | None, conns: int, db: Path | None = None) -> list[str]:
        argv = self.base_oha() + ["-z", f"{duration}s", "-c", str(conns), "-w"]
        if db is not None:
            argv += ["--db-url", str(db)]
        if rate:
            argv += ["-q", str(rate), "--latency-correction"]
        if kind == "handshake":
            argv += ["--disable-keepalive"]
        if target != "direct":
            argv += ["--cacert", str(self.ca)]
        for k, v in self.auth_headers(target):
            argv += ["-H", f"{k}: {v}"]
        argv.append(self.url(target, upstream))
        return argv

    def proxy_service(self, target: str) -> Service | None:
        if target == "nginx":
            return self.nginx_proxy
        return self.gateways.get(target)

    def wait_for_quiet(self) -> float:
        """Wait (bounded by --idle-wait) until the machine is quiet: the bench
        is idle between runs, so task CPU seen now belongs to other processes.
        Returns the last measured busy level in cores."""
        budget_left = max(0.0, self.args.idle_budget - self.idle_waited)
        deadline = time.monotonic() + min(self.args.idle_wait, budget_left)
        while True:
            a = system_ticks()
            time.sleep(0.5)
            b = system_ticks()
            busy = (b["task"] - a["task"]) / CLK_TCK / 0.5
            if busy <= NOISE_THRESHOLD or time.monotonic() >= deadline:
                return busy
            self.idle_waited += 0.5

    def run_load(self, kind: str, target: str, upstream: str, duration: float,
                 rate: int | None, conns: int, record: bool = True) -> dict | None:
        # Fixed-rate runs: oha times a connection's TCP+TLS setup into the first
        # request sent on it, so the run is extended by `skip` seconds and the
        # latency percentiles are computed from oha's per-request records
        # (--db-url) over the steady-state window only.
        skip = self.profile["skip"] if (rate and record) else 0.0
        db = self.tmp / "db" / f"run-{len(self.runs)}.sqlite" if skip else None
        if db is not None and db.exists():
            db.unlink()
        argv = self.oha_argv(kind, target, upstream, duration + skip, rate, conns, db)
        pre_busy = self.wait_for_quiet() if record and self.args.idle_wait > 0 else None
        proxy = self.proxy_service(target)
        servers = [s for s in RUNNING]
        before = {
            "proxy": proxy.cpu_ticks() if proxy else 0,
            "proxy_pids": proxy.cpu_ticks_by_pid() if proxy else {},
            "servers": sum(s.cpu_ticks() for s in servers),
            "children": resource.getrusage(resource.RUSAGE_CHILDREN),
            "sys": system_ticks(),
            "t": time.monotonic(),
        }
        r = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60)
        after_t = time.monotonic()
        ch = resource.getrusage(resource.RUSAGE_CHILDREN)
        proxy_ticks = (proxy.cpu_ticks() if proxy else 0) - before["proxy"]
        split = {}
        if proxy:
            for pid, t in proxy.cpu_ticks_by_pid().items():
                split[str(pid)] = (t - before["proxy_pids"].get(pid, 0)) / CLK_TCK
        server_ticks = sum(s.cpu_ticks() for s in servers) - before["servers"]
        sys1 = system_ticks()
        sys_d = {k: sys1[k] - before["sys"][k] for k in sys1}
        if not record:
            return None
        wall = after_t - before["t"]
        rec = {
            "kind": kind, "target": target, "upstream": upstream, "rate": rate,
            "conns": conns, "duration_s": duration,
            "command": shlex.join(argv).replace(self.token or "\0", "$TOKEN"),
            "exit_code": r.returncode, "busy_cores_before": pre_busy,
        }
        if r.returncode != 0:
            rec["error"] = (r.stderr or r.stdout)[-2000:]
            log(f"  oha failed ({r.returncode}): {rec['error'][:300]}")
            self.runs.append(rec)
            return rec
        try:
            data = json.loads(r.stdout)
        except json.JSONDecodeError:
            rec["error"] = "unparseable oha output: " + r.stdout[-500:]
            self.runs.append(rec)
            return rec
        s = data["summary"]
        pct = data.get("latencyPercentiles") or {}
        codes = data.get("statusCodeDistribution") or {}
        ok = int(codes.get("200", 0))
        total = sum(int(v) for v in codes.values()) + sum(
            int(v) for v in (data.get("errorDistribution") or {}).values())
        loadgen_cpu = (ch.ru_utime - before["children"].ru_utime) + (
            ch.ru_stime - before["children"].ru_stime)
        # CPU time of tasks that are not ours (other builds/tests on the box):
        # all task time (user+nice+system) minus our servers and load generator.
        # Interrupt/softirq time (loopback networking) is excluded on both sides.
        foreign = max(0.0, sys_d["task"] / CLK_TCK - server_ticks / CLK_TCK - loadgen_cpu)
        rec.update({
            "requests_total": total,
            "requests_ok": ok,
            "status_codes": codes,
            "errors": data.get("errorDistribution") or {},
            "rps": s.get("requestsPerSec"),
            "ok_rps": ok / s["total"] if s.get("total") else None,
            "latency_s": {
                "p50": pct.get("p50"), "p90": pct.get("p90"), "p99": pct.get("p99"),
                "p99.9": pct.get("p99.9"), "max": s.get("slowest"), "mean": s.get("average"),
            },
            "latency_source": "oha summary (whole run)",
            "bytes_per_response": s.get("sizePerRequest"),
            "cpu": {
                "proxy_s": proxy_ticks / CLK_TCK if proxy else None,
                "proxy_s_by_process": split or None,
                "proxy_us_per_req": (proxy_ticks / CLK_TCK * 1e6 / ok) if (proxy and ok) else None,
                "servers_s": server_ticks / CLK_TCK,
                "loadgen_s": loadgen_cpu,
                "loadgen_util": loadgen_cpu / wall if wall else None,
                "system_task_cores": sys_d["task"] / CLK_TCK / wall if wall else None,
                "irq_cores": sys_d["irq"] / CLK_TCK / wall if wall else None,
                "steal_cores": sys_d["steal"] / CLK_TCK / wall if wall else None,
                "foreign_s": foreign,
                "foreign_cores": foreign / wall if wall else None,
            },
            "oha": data,
        })
        if db is not None:
            win = window_stats(db, skip, duration)
            if win:
                rec["window"] = win
                rec["latency_s"] = win["latency_s"]
                rec["ok_rps"] = win["ok_rps"]
                rec["latency_source"] = (f"oha --db-url records, window [{skip}s, "
                                         f"{skip + duration}s] of scheduled send times")
            db.unlink(missing_ok=True)
        rec["noisy"] = any((rec["cpu"][k] or 0) > NOISE_THRESHOLD for k in ("foreign_cores", "steal_cores"))
        self.runs.append(rec)
        lat = rec["latency_s"]
        msg = (f"  {kind:9} {upstream:8} {target:6} rate={rate or '-':>5} c={conns:<3} "
               f"rps={rec['rps']:.0f} p50={fmt_us(lat['p50'])} p99={fmt_us(lat['p99'])} "
               f"max={fmt_us(lat['max'])}us ok={ok}/{total}")
        if rec["cpu"]["proxy_us_per_req"] is not None:
            msg += f" proxy_cpu={rec['cpu']['proxy_us_per_req']:.1f}us/req"
        if rec["noisy"]:
            msg += (f" NOISY(other procs {rec['cpu']['foreign_cores'] or 0:.2f} cores,"
                    f" steal {rec['cpu']['steal_cores'] or 0:.2f})")
        log(msg)
        return rec

    def time_left(self) -> bool:
        return time.monotonic() < self.deadline

    # ---------------- measurement plan

    def measure_upstream(self, upstream: str):
        p = self.profile
        targets = ["direct", "nginx"] + [t for t in GATEWAYS if t in self.gateways]
        log(f"upstream {upstream}: targets {', '.join(targets)}")
        for t in targets:  # warm up connections, JIT (node), caches
            self.run_load("warmup", t, upstream, p["warmup"], None, 16, record=False)
        rates = p["sdk_rates"] if upstream == "sdk" else p["rates"]
        for i, rate in enumerate(rates):
            dur = p["rate_duration"].get(rate, p["default_rate_duration"])
            for t in rotate(targets, i):
                if not self.time_left():
                    return self.note_deadline()
                self.run_load("rate", t, upstream, dur, rate, p["rate_conns"])
        for i, c in enumerate(p["sat_conns"]):
            for t in rotate(targets, i):
                if not self.time_left():
                    return self.note_deadline()
                self.run_load("saturate", t, upstream, p["sat_duration"], None, c)
        if upstream == "fast-1k" and not self.args.no_handshake:
            for t in targets:
                if not self.time_left():
                    return self.note_deadline()
                self.run_load("handshake", t, upstream, p["handshake_duration"], 100, 8)

    def note_deadline(self):
        msg = f"time budget of {self.args.max_minutes} min reached: remaining runs skipped"
        if msg not in self.notes:
            self.notes.append(msg)
            log(msg)

    def tls_info(self, port: int) -> str:
        try:
            ctx = ssl.create_default_context(cafile=str(self.ca))
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                with ctx.wrap_socket(sock, server_hostname="127.0.0.1") as tls:
                    c = tls.cipher()
                    return f"{tls.version()} {c[0] if c else '?'}"
        except Exception as exc:
            return f"unknown ({exc})"

    def run(self):
        self.find_tools()
        log(f"temp dir {self.tmp}")
        self.machine = machine_info(self.tools)
        self.make_cert()
        self.start_upstreams()
        self.start_nginx_proxy()
        self.proxy_tls = self.tls_info(self.ports["nginx_fast-1k"])
        # sanity: each proxy path returns the upstream body intact
        for u in ("fast-1k", "fast-16k"):
            st, _, data = http_request("127.0.0.1", self.ports[f"nginx_{u}"], True, "POST",
                                       MCP_PATH, REQUEST_BODY, mcp_headers(),
                                       cafile=str(self.ca))
            if st != 200 or len(data) != BODY_SIZES[u]:
                raise BenchError(f"nginx proxy {u}: HTTP {st}, {len(data)} bytes")
        self.forge_tls = None
        targets = GATEWAYS if not self.args.no_auth_path else ["forge"]
        if self.args.no_full_path:
            targets = [t for t in targets if t != "forge-full"]
        elif "forge-full" in targets and not all(
                (Path(self.args.plugins_dir) / d / f"{d}.wasm").exists() for d in FULL_DETECTORS):
            msg = (f"path (e) skipped: the four detectors are not built in {self.args.plugins_dir} "
                   "(run wasm-plugins/build.sh or scripts/build-test-plugins.sh)")
            self.notes.append(msg)
            log(msg)
            targets = [t for t in targets if t != "forge-full"]
        if "forge-auth" in targets or "forge-full" in targets:
            self.make_token()
        for u in self.upstreams:
            for target in targets:
                svc = self.start_gateway(u, target)
                if svc:
                    self.gateways[target] = svc
                    if self.forge_tls is None:
                        self.forge_tls = self.tls_info(self.ports[f"{target}_{u}"])
            try:
                self.measure_upstream(u)
            finally:
                for target, svc in self.gateways.items():
                    inst = self.gateway["instances"][f"{target}:{u}"]
                    inst["memory"] = svc.memory()
                    inst["alive_at_end"] = svc.alive()
                    svc.stop()
                    inst["log"] = log_summary(svc.logfile)
                self.gateways = {}
        self.machine["busy_processes_at_end"] = busy_processes(
            exclude={p for svc in RUNNING for p in svc.pids()})
        self.nginx_memory = self.nginx_proxy.memory()
        self.nginx_memory["worker_processes"] = len(self.nginx_proxy.worker_pids())

    # ---------------- output

    def write(self, ok: bool, error: str | None = None):
        self.results_dir.mkdir(parents=True, exist_ok=True)
        doc = {
            "generated": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "completed": ok,
            "error": error,
            "profile": "quick" if self.args.quick else "full",
            "temp_dir": str(self.tmp),
            "settings": self.profile | {
                "loadgen_cpus": self.args.loadgen_cpus,
                "loadgen_threads": self.args.loadgen_threads,
                "server_cpus": self.args.server_cpus,
                "nginx_proxy_workers": self.args.proxy_workers,
                "nginx_upstream_workers": self.args.upstream_workers,
                "access_log": self.args.access_log,
                "rate_duration": {str(k): v for k, v in self.profile["rate_duration"].items()},
            },
            "request": {"method": "POST", "path": MCP_PATH, "body": REQUEST_BODY,
                        "headers": mcp_headers()},
            "machine": getattr(self, "machine", {}),
            "tls": {"nginx": getattr(self, "proxy_tls", None),
                    "forge": getattr(self, "forge_tls", None),
                    "cert": getattr(self, "cert_cmd", None)},
            "gateway": self.gateway,
            "nginx_proxy_memory": getattr(self, "nginx_memory", None),
            "service_commands": {k: v for k, v in SERVICE_COMMANDS.items()
                                 if not k.startswith("forge-")},
            "notes": self.notes,
            "wall_seconds": round(time.monotonic() - self.start_wall, 1),
            "idle_wait_seconds": round(self.idle_waited, 1),
            "runs": self.runs,
        }
        (self.results_dir / "latest.json").write_text(json.dumps(doc, indent=1) + "\n")
        (self.results_dir / "latest.md").write_text(report_markdown(doc))
        log(f"wrote {self.results_dir / 'latest.md'} and latest.json "
            f"({doc['wall_seconds']}s wall)")


def window_stats(db: Path, skip: float, duration: float) -> dict | None:
    """Latency percentiles (nearest rank) and HTTP-200 rate over requests whose
    scheduled send time (latency-corrected start) falls in [skip, skip+duration)."""
    try:
        con = sqlite3.connect(str(db))
        rows = con.execute(
            "SELECT COALESCE(start_latency_correction, start) AS s, duration, status FROM oha "
            "WHERE s >= ? AND s < ?", (skip, skip + duration)).fetchall()
        con.close()
    except sqlite3.Error as exc:
        log(f"  cannot read {db}: {exc}")
        return None
    lat = sorted(d for _, d, st in rows if st == 200)
    if not lat:
        return None

    def q(p: float) -> float:
        return lat[min(len(lat) - 1, max(0, int(-(-p * len(lat) // 100)) - 1))]

    return {
        "skip_s": skip, "duration_s": duration, "requests": len(rows),
        "requests_ok": len(lat), "ok_rps": len(lat) / duration,
        "latency_s": {"p50": q(50), "p90": q(90), "p99": q(99), "p99.9": q(99.9),
                      "max": lat[-1], "mean": sum(lat) / len(lat)},
    }


ANSI = re.compile(r"\x1b\[[0-9;]*m")
LOG_LEVEL = re.compile(r"\b(TRACE|DEBUG|INFO|WARN|ERROR)\b")


def log_summary(path: Path) -> dict:
    """Line counts per level and the most frequent messages of a gateway log
    (tracing's text format: `TIMESTAMP LEVEL target: message key=value…`)."""
    try:
        lines = ANSI.sub("", path.read_text(errors="replace")).splitlines()
    except OSError:
        return {}
    levels: dict[str, int] = {}
    msgs: dict[str, int] = {}
    for line in lines:
        m = LOG_LEVEL.search(line[:60])
        if not m:
            continue
        levels[m.group(1)] = levels.get(m.group(1), 0) + 1
        rest = line[m.end():].strip()
        key = " ".join(w for w in rest.split()[:6] if "=" not in w)
        msgs[key] = msgs.get(key, 0) + 1
    top = sorted(msgs.items(), key=lambda kv: -kv[1])[:3]
    return {"lines": len(lines), "levels": levels,
            "top_messages": [{"message": k, "count": v} for k, v in top]}


def rotate(xs: list, i: int) -> list:
    i %= len(xs)
    return xs[i:] + xs[:i]


def fmt_us(seconds) -> str:
    return "-" if seconds is None else f"{seconds * 1e6:.0f}"


def busy_processes(interval: float = 1.0, exclude: set | None = None) -> list[dict]:
    """Processes using more than NOISE_THRESHOLD of a core over `interval`."""
    def snap():
        out = {}
        for pid in all_pids():
            st = proc_stat(pid)
            if st:
                out[pid] = st["utime"] + st["stime"]
        return out

    a = snap()
    time.sleep(interval)
    b = snap()
    busy = []
    for pid, t in b.items():
        if exclude and pid in exclude:
            continue
        cores = (t - a.get(pid, t)) / CLK_TCK / interval
        if cores > NOISE_THRESHOLD:
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(
                    errors="replace").strip()
            except OSError:
                cmd = "?"
            busy.append({"pid": pid, "cores": round(cores, 2), "cmd": cmd[:100]})
    return sorted(busy, key=lambda x: -x["cores"])


def machine_info(tools: dict) -> dict:
    cpu_model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu_model = line.split(":", 1)[1].strip()
            break
    mem_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    sdk_version = "?"
    try:
        lock = json.loads((BENCH_DIR / "sdk-upstream/package-lock.json").read_text())
        sdk_version = lock["packages"]["node_modules/@modelcontextprotocol/sdk"]["version"]
    except (OSError, KeyError, ValueError):
        pass
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model,
        "kernel": platform.release(),
        "mem_total_mib": mem_kb // 1024,
        "loadavg_at_start": Path("/proc/loadavg").read_text().split()[:3],
        "busy_processes_at_start": busy_processes(),
        "nginx": cmd_output([tools["nginx"], "-v"]),
        "oha": cmd_output([tools["oha"], "--version"]),
        "openssl": cmd_output([tools["openssl"], "version"]),
        "node": cmd_output([tools["node"], "--version"]),
        "mcp_sdk": sdk_version,
        "python": platform.python_version(),
    }


# --------------------------------------------------------------------------
# markdown report


def cell(text, limit: int = 200) -> str:
    """One markdown table cell / inline span: single line, no pipes."""
    t = " ".join(str(text).split())
    if len(t) > limit:
        t = t[: limit - 1] + "…"
    return t.replace("|", "\\|")


def us(v) -> str:
    return "–" if v is None else f"{v * 1e6:,.0f}"


def delta_us(v, base) -> str:
    if v is None or base is None:
        return "–"
    return f"{(v - base) * 1e6:+,.0f}"


def ratio(a, b) -> str:
    if not a or not b:
        return "–"
    return f"{a / b:.2f}"


def instance_label(inst: dict) -> str:
    """A gateway instance in the report: its path and the upstream it served."""
    target = inst.get("target", "forge")
    return f"{TARGET_LABEL[target]} ({UPSTREAM_LABEL[inst['upstream']]} run)"


def ecdsa_der_to_jws(der: bytes) -> bytes:
    """An ECDSA signature as openssl writes it (DER SEQUENCE of INTEGER r, s) in the JWS
    form: r and s as 32-byte big-endian numbers (RFC 7518 §3.4)."""
    if der[0] != 0x30:
        raise BenchError("not a DER ECDSA signature")
    i = 3 if der[1] & 0x80 else 2
    parts = []
    for _ in range(2):
        if der[i] != 0x02:
            raise BenchError("not a DER ECDSA signature")
        n = der[i + 1]
        parts.append(int.from_bytes(der[i + 2:i + 2 + n], "big").to_bytes(32, "big"))
        i += 2 + n
    return parts[0] + parts[1]


def report_markdown(doc: dict) -> str:
    runs = [r for r in doc["runs"] if "oha" in r]
    m = doc["machine"]
    st = doc["settings"]
    gw = doc["gateway"]
    out = []
    w = out.append
    w(f"# Forge load benchmark — {doc['generated']}\n")
    if doc["profile"] == "quick":
        w("> **Quick (smoke-test) profile: durations are too short for the numbers to mean much.**\n")
    if not doc["completed"]:
        w(f"> **Run did not complete:** {doc['error']}\n")
    for note in doc["notes"]:
        w(f"> Note: {note}\n")
    noisy = [r for r in runs if r.get("noisy")]
    if noisy:
        w(f"> **{len(noisy)} of {len(runs)} runs were disturbed by other processes or hypervisor steal** "
          f"(>{NOISE_THRESHOLD:.0%} of a core used outside the bench; marked ⚠ below). "
          "Re-run on an idle machine before trusting those rows.\n")
    for when in ("start", "end"):
        procs = m.get(f"busy_processes_at_{when}") or []
        if procs:
            w(f"> Other busy processes at {when} of run: " + "; ".join(
                f"`{p['cmd'][:60]}` ({p['cores']} cores)" for p in procs[:5]) + "\n")
    w("## Machine and setup\n")
    w(f"- CPU: {m.get('cpu_model')} — nproc = {m.get('nproc')}; "
      f"RAM {m.get('mem_total_mib')} MiB; kernel {m.get('kernel')}; "
      f"load average at start {' '.join(m.get('loadavg_at_start', []))}")
    w(f"- Tools: {m.get('oha')}; {m.get('nginx')}; {m.get('openssl')}; node {m.get('node')}; "
      f"@modelcontextprotocol/sdk {m.get('mcp_sdk')}")
    w(f"- Load generator: oha pinned with `taskset -c {st['loadgen_cpus'] or '(none)'}`, "
      f"{st['loadgen_threads']} worker thread(s); HTTP/1.1 keep-alive; TLS verified against "
      f"the bench's self-signed cert. Servers pinned to: {st['server_cpus'] or 'not pinned'}.")
    w(f"- nginx TLS proxy: {st['nginx_proxy_workers']} worker processes "
      f"(the gateway runs a 2-worker tokio runtime); upstream keep-alive pool; "
      f"per-request access log {st.get('access_log', 'off')} in both proxies. "
      f"Canned upstream nginx: {st['nginx_upstream_workers']} worker(s).")
    w(f"- TLS negotiated (Python client probe): nginx {doc['tls'].get('nginx')}; "
      f"Forge {doc['tls'].get('forge') or 'n/a'}; cert: ECDSA P-256 leaf signed by a throwaway CA.")
    durations = ", ".join(f"{k} rps: {v}s" for k, v in st["rate_duration"].items())
    w(f"- Fixed-rate runs: {st['rate_conns']} connections, `-q RATE --latency-correction`: "
      "latency is measured from each request's *scheduled* send time, so time spent queued "
      "behind a slow response counts (no coordinated omission). oha times a connection's "
      "TCP+TLS setup into the first request sent on it, so the first "
      f"{st['skip']}s of every fixed-rate run are discarded and percentiles are computed from "
      f"oha's per-request records (`--db-url`) over the following measured window "
      f"({durations or 'all rates'}; default {st['default_rate_duration']}s).")
    w(f"- Saturation: no rate limit, {st['sat_duration']}s per connection count "
      f"{st['sat_conns']}. Warm-up {st['warmup']}s per path before each upstream's runs, "
      "not recorded.")
    w(f"- Forge gateway: {cell(gw.get('status'), 300)}")
    if gw.get("binary"):
        b = gw["binary"]
        w(f"  (binary `{b['path']}`, sha256 {b['sha256']}…, built {b['mtime']}, git {cell(b['git_head'], 60)})")
    w("")

    def find(kind, upstream, target, rate=None, conns=None):
        for r in runs:
            if (r["kind"] == kind and r["upstream"] == upstream and r["target"] == target
                    and (rate is None or r["rate"] == rate)
                    and (conns is None or r["conns"] == conns)):
                return r
        return None

    upstreams = [u for u in UPSTREAMS if any(r["upstream"] == u for r in runs)]

    # ---- latency at fixed rate
    w("## Latency at fixed request rates\n")
    w("Latency in µs (p50 / p99 / max). *Added* = this path minus (a) at the same "
      "percentile (a difference of percentiles, not a percentile of differences). "
      "`rate` = achieved req/s with HTTP 200.\n")
    w("| upstream | target rps | path | achieved rps | p50 | p99 | max | added p50 | added p99 | errors |")
    w("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for u in upstreams:
        rates = sorted({r["rate"] for r in runs if r["kind"] == "rate" and r["upstream"] == u})
        for rate in rates:
            base = find("rate", u, "direct", rate)
            for t in TARGETS:
                r = find("rate", u, t, rate)
                if not r:
                    continue
                lat = r["latency_s"]
                bl = base["latency_s"] if base else {}
                errs = r["requests_total"] - r["requests_ok"]
                flag = " ⚠" if r.get("noisy") else ""
                short = " (not sustained)" if r["ok_rps"] and r["ok_rps"] < 0.95 * rate else ""
                w(f"| {UPSTREAM_LABEL[u]} | {rate:,} | {TARGET_LABEL[t]}{flag} | "
                  f"{r['ok_rps']:,.0f}{short} | {us(lat['p50'])} | {us(lat['p99'])} | "
                  f"{us(lat['max'])} | "
                  f"{'' if t == 'direct' else delta_us(lat['p50'], bl.get('p50'))} | "
                  f"{'' if t == 'direct' else delta_us(lat['p99'], bl.get('p99'))} | {errs} |")
    w("")

    # ---- saturation
    w("## Saturation throughput\n")
    w("Max HTTP-200 req/s with no rate limit, per connection count (load generator "
      "pinned as above). Ratios use the best connection count of each path.\n")
    w("| upstream | conns | (a) direct | (b) nginx | (c) Forge | (d) Forge+JWT+policy | (b)/(a) | (c)/(a) | (c)/(b) | (d)/(b) |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    best = {}
    for u in upstreams:
        conns = sorted({r["conns"] for r in runs if r["kind"] == "saturate" and r["upstream"] == u})
        for c in conns:
            vals = {}
            for t in TARGETS:
                r = find("saturate", u, t, conns=c)
                vals[t] = r["ok_rps"] if r else None
                if r and (best.get((u, t)) is None or r["ok_rps"] > best[(u, t)]["ok_rps"]):
                    best[(u, t)] = r
            val = lambda t: "–" if vals[t] is None else f"{vals[t]:,.0f}"
            w(f"| {UPSTREAM_LABEL[u]} | {c} | {val('direct')} | {val('nginx')} | "
              f"{val('forge')} | {val('forge-auth')} | {ratio(vals['nginx'], vals['direct'])} | "
              f"{ratio(vals['forge'], vals['direct'])} | {ratio(vals['forge'], vals['nginx'])} | "
              f"{ratio(vals['forge-auth'], vals['nginx'])} |")
        b = {t: (best[(u, t)]["ok_rps"] if (u, t) in best else None) for t in TARGETS}
        bc = lambda t: "–" if b[t] is None else f"**{b[t]:,.0f}** (c={best[(u, t)]['conns']})"
        w(f"| {UPSTREAM_LABEL[u]} | **best** | {bc('direct')} | {bc('nginx')} | {bc('forge')} | "
          f"{bc('forge-auth')} | **{ratio(b['nginx'], b['direct'])}** | "
          f"**{ratio(b['forge'], b['direct'])}** | **{ratio(b['forge'], b['nginx'])}** | "
          f"**{ratio(b['forge-auth'], b['nginx'])}** |")
    w("")

    # ---- path (e) against its targets
    if any(r["target"] == "forge-full" for r in runs):
        w("## Full pipeline (e): TLS + JWT + policy + four detectors + evidence\n")
        w(f"Targets on the 1 KiB upstream: p99 added latency ≤ {FULL_P99_ADDED_MAX_S * 1000:g} ms at "
          f"1,000 req/s; saturation ≥ {FULL_SAT_MIN_OF_NGINX:.0%} of (b) nginx in this run.\n")
        w("| upstream | p99 added at 1,000 rps | saturation (best c) | of nginx | CPU µs/req at 1,000 rps | CPU µs/req at saturation |")
        w("|---|---:|---:|---:|---:|---:|")
        for u in upstreams:
            r, base = find("rate", u, "forge-full", 1000), find("rate", u, "direct", 1000)
            added = (r["latency_s"]["p99"] - base["latency_s"]["p99"]) if r and base else None
            sat, ng = best.get((u, "forge-full")), best.get((u, "nginx"))
            share = sat["ok_rps"] / ng["ok_rps"] if sat and ng and ng["ok_rps"] else None
            def mark(ok):
                return "" if ok is None or u != "fast-1k" else (" ✅" if ok else " ❌")

            def cpu(run):
                v = run["cpu"]["proxy_us_per_req"] if run else None
                return "–" if v is None else f"{v:.1f}"

            added_cell = "–" if added is None else us(added) + mark(added <= FULL_P99_ADDED_MAX_S)
            sat_cell = "–" if not sat else f"{sat['ok_rps']:,.0f} (c={sat['conns']})"
            share_cell = "–" if share is None else f"{share:.0%}" + mark(share >= FULL_SAT_MIN_OF_NGINX)
            w(f"| {UPSTREAM_LABEL[u]} | {added_cell} | {sat_cell} | {share_cell} | {cpu(r)} | {cpu(sat)} |")
        w("")

    # ---- proxy cost
    w("## Proxy CPU time per request and memory\n")
    w("CPU µs per HTTP-200 request = (utime+stime of the proxy's processes after − before) / "
      "requests, from /proc/PID/stat (10 ms tick resolution; nginx = sum over its workers). "
      "At saturation the loopback load generator and upstream compete for the same 2 cores.\n")
    w("| upstream | run | (b) nginx CPU µs/req | (c) Forge CPU µs/req | (d) Forge+JWT+policy CPU µs/req | (c)/(b) | (d)/(b) |")
    w("|---|---|---:|---:|---:|---:|---:|")
    for u in upstreams:
        rows = []
        rates = sorted({r["rate"] for r in runs if r["kind"] == "rate" and r["upstream"] == u})
        for rate in rates:
            rows.append((f"{rate:,} rps", *(find("rate", u, t, rate) for t in ("nginx", "forge", "forge-auth"))))
        if any((u, t) in best for t in ("nginx", "forge", "forge-auth")):
            rows.append(("saturation (best c)", *(best.get((u, t)) for t in ("nginx", "forge", "forge-auth"))))
        hs = [find("handshake", u, t) for t in ("nginx", "forge", "forge-auth")]
        if any(hs):
            rows.append(("new TLS conn per request, 100 rps", *hs))
        for label, *rs in rows:
            cn, cf, ca = (r["cpu"]["proxy_us_per_req"] if r else None for r in rs)
            num = lambda v: "–" if v is None else f"{v:.1f}"
            w(f"| {UPSTREAM_LABEL[u]} | {label} | {num(cn)} | {num(cf)} | {num(ca)} | "
              f"{ratio(cf, cn)} | {ratio(ca, cn)} |")
    w("")
    nm = doc.get("nginx_proxy_memory") or {}
    w("| process | peak RSS (VmHWM) | RSS at end | threads |")
    w("|---|---:|---:|---:|")
    if nm:
        w(f"| nginx proxy, master + {nm.get('worker_processes')} workers (all upstreams) | "
          f"{nm['vm_hwm_kb'] / 1024:.1f} MiB | {nm['vm_rss_kb'] / 1024:.1f} MiB | – |")
    for inst in (gw.get("instances") or {}).values():
        mem = inst.get("memory")
        if mem:
            w(f"| {instance_label(inst)} | {mem['vm_hwm_kb'] / 1024:.1f} MiB | "
              f"{mem['vm_rss_kb'] / 1024:.1f} MiB | {mem['threads']} |")
        else:
            w(f"| {instance_label(inst)} | {cell(inst.get('status'), 120)} | | |")
    for inst in (gw.get("instances") or {}).values():
        lg = inst.get("log")
        if lg and lg.get("lines"):
            lv = ", ".join(f"{k} {v}" for k, v in sorted(lg["levels"].items()))
            top = "; ".join(f"\"{cell(t['message'], 60)}\" ×{t['count']}" for t in lg["top_messages"])
            w(f"\n{instance_label(inst)} log: {lg['lines']} lines ({lv}); most frequent: {top}")
    w("")
    hs = [r for r in runs if r["kind"] == "handshake"]
    if hs:
        w("## New connection per request (TLS handshake cost)\n")
        w("100 req/s, keep-alive disabled (`--disable-keepalive`): every request opens a "
          "TCP (+TLS) connection. oha's rustls client may resume TLS sessions; see README.\n")
        w("| path | p50 µs | p99 µs | max µs | proxy CPU µs/req | errors |")
        w("|---|---:|---:|---:|---:|---:|")
        for r in hs:
            lat = r["latency_s"]
            c = r["cpu"]["proxy_us_per_req"]
            w(f"| {TARGET_LABEL[r['target']]}{' ⚠' if r.get('noisy') else ''} | {us(lat['p50'])} | "
              f"{us(lat['p99'])} | {us(lat['max'])} | {'–' if c is None else f'{c:.1f}'} | "
              f"{r['requests_total'] - r['requests_ok']} |")
        w("")

    # ---- diagnostics
    w("## Run diagnostics\n")
    w("Load-generator CPU is the fraction of its pinned core it used (≈1.0 means the "
      "generator, not the server, may be the limit). *Other* = CPU used by processes "
      "outside the bench during the run; *steal* = CPU the hypervisor gave to other guests.\n")
    w("| kind | upstream | path | rate | conns | loadgen util | all servers CPU s | other procs (cores) | steal (cores) |")
    w("|---|---|---|---:|---:|---:|---:|---:|---:|")
    for r in runs:
        c = r["cpu"]
        w(f"| {r['kind']} | {r['upstream']} | {r['target']} | {r['rate'] or '–'} | {r['conns']} | "
          f"{c['loadgen_util']:.2f} | {c['servers_s']:.2f} | "
          f"{c['foreign_cores']:.2f} | {c['steal_cores'] or 0:.2f}{' ⚠' if r.get('noisy') else ''} |")
    failed = [r for r in doc["runs"] if "oha" not in r]
    if failed:
        w("\nFailed runs:\n")
        for r in failed:
            w(f"- {r['kind']} {r['upstream']} {r['target']}: `{cell(r.get('error', ''), 300)}`")
    w("")
    tmp = doc.get("temp_dir") or "\0"
    w("## Exact commands\n")
    w(f"- cert: `{(doc['tls'].get('cert') or '').replace(tmp, '$TMP')}`")
    for name, argv in (doc.get("service_commands") or {}).items():
        w(f"- {name}: `{argv.replace(tmp, '$TMP')}`")
    w("  (`$TMP/nginx-*.conf` are `bench/nginx-*.conf.tmpl` with ports and paths filled in)")
    for inst in (gw.get("instances") or {}).values():
        envs = " ".join(f"{k}={shlex.quote(v)}" for k, v in (inst.get("env") or {}).items())
        w(f"- {instance_label(inst)}: `{(envs + ' ') if envs else ''}{inst['argv'].replace(tmp, '$TMP')}` — "
          f"{cell(inst['status'].replace(tmp, '$TMP'), 300)}")
    cmds = [r["command"].replace(tmp, "$TMP") for r in doc["runs"]]
    prefix = os.path.commonprefix(cmds) if len(cmds) > 1 else ""
    prefix = prefix[: prefix.rfind(" -z ") + 1] if " -z " in prefix else ""
    w("\n<details><summary>Every load-generator command, in run order "
      "(ports are picked at run time; $TMP is the run's temp dir)</summary>\n")
    w("```sh")
    if prefix:
        w("# every command below starts with this common part, written as $OHA:")
        w(prefix.strip())
        w("")
        for c in cmds:
            w("$OHA " + c[len(prefix):] if c.startswith(prefix) else c)
    else:
        for c in cmds:
            w(c)
    w("```\n</details>\n")
    w(f"Raw data: `latest.json` (full oha JSON per run). Wall time {doc['wall_seconds']} s.\n")
    return "\n".join(out)


# --------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(prog="bench/run.sh", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gateway-bin", help="Forge binary (default: target/release/forge)")
    ap.add_argument("--gateway-arg", action="append",
                    help="extra argument for `forge run` (repeatable)")
    ap.add_argument("--gateway-ready-timeout", type=float, default=60)
    ap.add_argument("--quick", action="store_true", help="short durations: smoke test")
    ap.add_argument("--out", default=str(BENCH_DIR / "results"), help="results directory")
    ap.add_argument("--rates", help="comma-separated fixed rates (default 100,1000,5000)")
    ap.add_argument("--sdk-rates", help="fixed rates for the SDK upstream (default 100,1000)")
    ap.add_argument("--sat-conns", help="saturation connection counts (default 4,16,64)")
    ap.add_argument("--skip-upstream", action="append", choices=UPSTREAMS)
    ap.add_argument("--no-handshake", action="store_true",
                    help="skip the new-connection-per-request runs")
    ap.add_argument("--no-full-path", action="store_true",
                    help="skip path (e): Forge with JWT, policy, the four shipped detectors and evidence")
    ap.add_argument("--plugins-dir", default=str(REPO_DIR / "wasm-plugins" / "dist"),
                    help="the built detectors for path (e) (default: wasm-plugins/dist)")
    ap.add_argument("--no-auth-path", action="store_true",
                    help="skip path (d): Forge with a bearer JWT and the default policy enforcing")
    ap.add_argument("--no-token-cache", action="store_true",
                    help="path (d) verifies the token's signature on every request "
                         "(auth.token_cache.enabled: false)")
    ncpu = os.cpu_count() or 1
    ap.add_argument("--loadgen-cpus", default=str(ncpu - 1) if ncpu > 1 else "",
                    help="taskset CPU list for the load generator ('' = no pinning)")
    ap.add_argument("--loadgen-threads", type=int, default=1)
    ap.add_argument("--server-cpus", default="",
                    help="taskset CPU list for upstreams/proxies/gateway (default: not pinned)")
    ap.add_argument("--access-log", choices=["off", "on"], default="off",
                    help="per-request access logging in both proxies: off (default: nginx "
                         "access_log off, Forge RUST_LOG=info,forge::access=off) or on "
                         "(nginx logs to a file, Forge keeps its default logging)")
    ap.add_argument("--proxy-workers", type=int, default=2, help="nginx TLS proxy workers")
    ap.add_argument("--upstream-workers", type=int, default=1, help="canned nginx upstream workers")
    ap.add_argument("--max-minutes", type=float, default=20,
                    help="stop starting new runs after this long")
    ap.add_argument("--idle-wait", type=float, default=None,
                    help="before each run wait up to this many seconds for other processes "
                         "to go quiet (default 10, 0 with --quick)")
    ap.add_argument("--idle-budget", type=float, default=120,
                    help="total seconds the whole run may spend waiting for quiet (default 120)")
    ap.add_argument("--report-only", metavar="JSON",
                    help="only re-render the markdown report from an existing latest.json")
    ap.add_argument("--keep-temp", action="store_true", help="keep the temp dir (configs, logs)")
    args = ap.parse_args()

    if args.report_only:
        doc = json.loads(Path(args.report_only).read_text())
        out = Path(args.report_only).with_suffix(".md")
        out.write_text(report_markdown(doc))
        log(f"wrote {out}")
        return 0
    if args.idle_wait is None:
        args.idle_wait = 0.0 if args.quick else 10.0
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, _on_signal)

    h = Harness(args)
    ok, err = False, None
    try:
        h.run()
        ok = True
    except KeyboardInterrupt as exc:
        err = f"interrupted ({exc})"
        log(err)
    except BenchError as exc:
        err = str(exc)
        log(f"ERROR: {err}")
    finally:
        stop_all()
        # ignore further signals while writing results
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            signal.signal(sig, signal.SIG_IGN)
        try:
            h.write(ok, err)
        except Exception as exc:
            log(f"writing results failed: {exc}")
            ok = False
        if args.keep_temp or not ok:
            log(f"temp dir kept: {h.tmp}")
        else:
            shutil.rmtree(h.tmp, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
