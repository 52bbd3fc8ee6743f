#!/usr/bin/env python3
"""Forge test peer: scenario client built on the Python SDK (mcp 2.x) over Streamable HTTP.

    .venv/bin/python py-client.py --url URL [--ca PEMFILE] [--bearer TOKEN] [--scenario full|policy]

Part 1 connects with the default negotiation (server/discover -> 2026-07-28 against py-server.py):
tools, progress, cancellation, per-request logging, input_required multi round-trips (automatic and
manual, incl. requestState), resources, subscriptions/listen, prompts, completion.
Part 2 connects with mode="legacy" (initialize handshake, Mcp-Session-Id): push elicitation,
sampling and roots, logging/setLevel, progress, notifications/cancelled, unsolicited
notifications on the standalone GET stream, DELETE on close.
Prints ONE JSON transcript on stdout (volatile values masked); exit code 1 on unexpected failures.

--bearer sends `Authorization: Bearer TOKEN` with every request. --scenario policy runs only the
steps a gateway's policy decides (both eras: list tools, call echo, add, elicit, sample) and records each
outcome without judging it: the test that runs it knows what the policy allows.
"""

from __future__ import annotations

import argparse
import json
import ssl
import sys
import time
import traceback
import uuid
import warnings
from typing import Any, Awaitable, Callable

import anyio
import httpx2

from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.client.subscriptions import ResourceUpdated, ToolsListChanged
from mcp.shared.exceptions import MCPError
from mcp.types import (
    CreateMessageResult,
    ElicitResult,
    InputRequiredResult,
    ListRootsResult,
    PromptReference,
    ResourceTemplateReference,
    Root,
    TextContent,
)

warnings.filterwarnings("ignore", message=".*(deprecated|removed) as of 2026-07-28.*")

VOLATILE = {"sessionId", "requestState", "request_state", "progressToken", "eventId", "lastEventId", "timestamp", "requestId"}
ROOTS = [("file:///tmp/forge-root-a", "root-a"), ("file:///tmp/forge-root-b", "root-b")]
ELICIT_ANSWERS = {"Really wipe?": {"confirm": True}, "Which scope?": {"scope": "sessions"}}


def err(*a: Any) -> None:
    print("[py-client]", *a, file=sys.stderr, flush=True)


def dump(v: Any) -> Any:
    """Pydantic models -> wire-shaped JSON (camelCase aliases), volatile values masked, keys sorted later."""
    if hasattr(v, "model_dump"):
        v = v.model_dump(mode="json", by_alias=True, exclude_none=True)
    if isinstance(v, dict):
        return {k: ("<volatile>" if k in VOLATILE else dump(x)) for k, x in v.items() if x is not None}
    if isinstance(v, (list, tuple)):
        return [dump(x) for x in v]
    return v


def error_info(e: BaseException) -> dict[str, Any]:
    if isinstance(e, MCPError):
        o: dict[str, Any] = {"name": "MCPError", "code": e.error.code, "message": e.error.message}
        if e.error.data is not None:
            o["data"] = e.error.data
        return dump(o)
    return {"name": type(e).__name__, "message": str(e)}


class Transcript:
    def __init__(self) -> None:
        self.steps: list[dict[str, Any]] = []
        self.failures: list[str] = []

    async def run(self, step: str, fn: Callable[[], Awaitable[Any]], expect_error: bool | None = False) -> Any:
        """expect_error=None records either outcome for the caller to judge."""
        t0 = time.monotonic()
        result = None
        try:
            with anyio.fail_after(15):
                result = await fn()
            self.steps.append({"step": step, "ok": True, "result": dump(result)})
            if expect_error:
                self.failures.append(f"{step}: succeeded but an error was expected")
        except Exception as e:  # noqa: BLE001 - every failure is recorded
            self.steps.append({"step": step, "ok": False, "error": error_info(e)})
            if expect_error is False:
                self.failures.append(f"{step}: {''.join(traceback.format_exception(e))}")
        err(f"step {step} {int((time.monotonic() - t0) * 1000)}ms")
        return result


class Seen:
    def __init__(self) -> None:
        self.elicitation: list[Any] = []
        self.sampling: list[Any] = []
        self.roots = 0
        self.logs: list[Any] = []
        self.notifications: list[str] = []


def callbacks(seen: Seen) -> dict[str, Any]:
    async def on_elicit(context: Any, params: Any) -> ElicitResult:
        seen.elicitation.append(dump(params))
        return ElicitResult(action="accept", content=ELICIT_ANSWERS.get(params.message, {"name": "forge", "count": 3}))

    async def on_sample(context: Any, params: Any) -> CreateMessageResult:
        seen.sampling.append(dump(params))
        last = params.messages[-1].content
        text = getattr(last, "text", "")
        return CreateMessageResult(model="forge-fixed-model", role="assistant", stop_reason="endTurn", content=TextContent(type="text", text=f"sampled: {text}"))

    async def on_roots(context: Any) -> ListRootsResult:
        seen.roots += 1
        return ListRootsResult(roots=[Root(uri=u, name=n) for u, n in ROOTS])

    async def on_log(params: Any) -> None:
        seen.logs.append(dump(params))

    async def on_message(message: Any) -> None:
        if isinstance(message, Exception):
            err("transport exception:", repr(message))
            return
        method = getattr(message, "method", None)
        if method in ("notifications/resources/updated", "notifications/tools/list_changed"):
            uri = getattr(getattr(message, "params", None), "uri", None)
            seen.notifications.append(f"{method} {uri}" if uri else method)

    return dict(
        elicitation_callback=on_elicit,
        sampling_callback=on_sample,
        list_roots_callback=on_roots,
        logging_callback=on_log,
        message_handler=on_message,
    )


async def wait_for(pred: Callable[[], bool], seconds: float, what: str) -> None:
    with anyio.fail_after(seconds):
        while not pred():
            await anyio.sleep(0.01)


def text_of(result: Any) -> str:
    return "\n".join(getattr(c, "text", f"[{c.type}]") for c in result.content)


async def cancelled_slow(client: Client, t: Transcript) -> dict[str, Any]:
    run_id = str(uuid.uuid4())
    progress: list[float] = []
    scope = anyio.CancelScope()

    async def on_progress(p: float, total: float | None, message: str | None) -> None:
        progress.append(p)
        if p >= 1:
            scope.cancel()

    with scope:
        await client.call_tool("slow", {"steps": 50, "delay_ms": 100, "run_id": run_id}, progress_callback=on_progress)
    outcome = "cancelled" if scope.cancelled_caught else "completed"
    status = await client.call_tool("slow_status", {"run_id": run_id})
    return {"outcome": outcome, "progressBeforeCancel": progress, "serverSaw": status.structured_content}


async def slow_with_progress(client: Client) -> dict[str, Any]:
    progress: list[dict[str, Any]] = []

    async def on_progress(p: float, total: float | None, message: str | None) -> None:
        progress.append({"progress": p, "total": total, "message": message})

    r = await client.call_tool("slow", {"steps": 3, "delay_ms": 30}, progress_callback=on_progress)
    return {"result": r, "progress": progress}


async def modern_part(target: Any, t: Transcript) -> None:
    seen = Seen()
    client = Client(target, log_level="info", **callbacks(seen))
    async with client:
        await t.run("connect (auto negotiation)", _const({
            "protocolVersion": client.protocol_version,
            "serverInfo": dump(client.server_info),
            "capabilities": dump(client.server_capabilities),
            "instructions": client.instructions,
            "discover": dump(client.session.discover_result),
        }))
        await t.run("tools/list", lambda: client.list_tools())
        await t.run("tools/call echo", lambda: client.call_tool("echo", {"text": "hello forge"}))
        await t.run("tools/call add", lambda: client.call_tool("add", {"a": 2, "b": 40}))
        await t.run("tools/call fail (isError)", lambda: client.call_tool("fail", {}))
        await t.run("tools/call unknown tool", lambda: client.call_tool("no-such-tool", {}))
        await t.run("tools/call echo invalid args", lambda: client.call_tool("echo", {"text": {"not": "a string"}}))
        await t.run("tools/call era", lambda: client.call_tool("era", {}))
        await t.run("tools/call slow with progress", lambda: slow_with_progress(client))
        await t.run("tools/call slow cancelled", lambda: cancelled_slow(client, t))

        async def logging_step() -> Any:
            seen.logs.clear()
            r = await client.call_tool("log", {})
            await wait_for(lambda: len(seen.logs) >= 3, 3, "log messages")
            return {"result": r, "messages": list(seen.logs)}

        await t.run("logging with per-request logLevel=info", logging_step)

        async def mrtr(name: str, args: dict[str, Any]) -> Any:
            seen.elicitation.clear()
            seen.sampling.clear()
            seen.roots = 0
            r = await client.call_tool(name, args)
            return {"result": r, "elicitationsSeen": list(seen.elicitation), "samplingSeen": list(seen.sampling), "rootsRequests": seen.roots}

        await t.run("MRTR elicitation (auto)", lambda: mrtr("elicit", {"question": "Who are you?"}))
        await t.run("MRTR sampling (auto)", lambda: mrtr("sample", {"prompt": "Summarise Forge"}))
        await t.run("MRTR roots (auto)", lambda: mrtr("list_roots", {}))
        await t.run("MRTR two rounds with requestState (auto)", lambda: mrtr("mrtr_sequence", {}))

        async def manual_sequence() -> Any:
            s = client.session
            r1 = await s.call_tool("mrtr_sequence", {}, allow_input_required=True)
            r2 = await s.call_tool(
                "mrtr_sequence", {}, input_responses={"confirm": ElicitResult(action="accept", content={"confirm": True})},
                request_state=getattr(r1, "request_state", None), allow_input_required=True,
            )
            if not isinstance(r2, InputRequiredResult) or not r2.request_state:
                raise RuntimeError("round 2 carried no requestState")
            r3 = await s.call_tool(
                "mrtr_sequence", {}, input_responses={"scope": ElicitResult(action="accept", content={"scope": "cache"})},
                request_state=r2.request_state, allow_input_required=True,
            )
            return {"round1": r1, "round2": r2, "round3": r3}

        await t.run("MRTR manual: sequence with requestState echo", manual_sequence)
        await t.run(
            "MRTR manual: tampered requestState rejected",
            lambda: client.session.call_tool(
                "mrtr_sequence", {}, input_responses={"scope": ElicitResult(action="accept", content={"scope": "all"})},
                request_state="tampered", allow_input_required=True,
            ),
            expect_error=True,
        )

        await t.run("resources/list", lambda: client.list_resources())
        await t.run("resources/templates/list", lambda: client.list_resource_templates())
        await t.run("resources/read static", lambda: client.read_resource("test://static/hello"))
        await t.run("resources/read blob", lambda: client.read_resource("test://static/blob"))
        await t.run("resources/read template", lambda: client.read_resource("test://items/42"))
        await t.run("resources/read unknown", lambda: client.read_resource("test://nope"), expect_error=True)

        async def listen_step() -> Any:
            events: list[str] = []
            async with client.listen(tools_list_changed=True, resource_subscriptions=["test://static/counter"]) as sub:
                touch = await client.call_tool("touch_resource", {"uri": "test://static/counter"})
                with anyio.fail_after(5):
                    ev = await sub.__anext__()
                events.append(f"resource_updated {ev.uri}" if isinstance(ev, ResourceUpdated) else type(ev).__name__)
                signal = await client.call_tool("signal_tools_changed", {})
                with anyio.fail_after(5):
                    ev = await sub.__anext__()
                events.append("tools_list_changed" if isinstance(ev, ToolsListChanged) else type(ev).__name__)
                honored = dump(sub.honored)
            return {"honored": honored, "touch": touch, "signal": signal, "events": events}

        await t.run("subscriptions/listen", listen_step)

        await t.run("prompts/list", lambda: client.list_prompts())
        await t.run("prompts/get greet", lambda: client.get_prompt("greet", {"name": "alice", "style": "pirate"}))
        await t.run("prompts/get simple", lambda: client.get_prompt("simple"))
        await t.run("prompts/get missing argument", lambda: client.get_prompt("greet", {}), expect_error=True)
        await t.run("completion/complete prompt arg", lambda: client.complete(
            PromptReference(type="ref/prompt", name="greet"), {"name": "name", "value": "car"}))
        await t.run("completion/complete resource template", lambda: client.complete(
            ResourceTemplateReference(type="ref/resource", uri="test://items/{id}"), {"name": "id", "value": "1"}))


async def legacy_part(target: Any, t: Transcript) -> None:
    seen = Seen()
    client = Client(target, mode="legacy", **callbacks(seen))
    async with client:
        await t.run("legacy: connect (initialize)", _const({
            "protocolVersion": client.protocol_version,
            "serverInfo": dump(client.server_info),
            "capabilities": dump(client.server_capabilities),
            "instructions": client.instructions,
        }))
        await t.run("legacy: ping", lambda: client.send_ping())
        # MCPServer (mcp 2.3) registers no logging/setLevel handler: the call answers -32601.
        await t.run("legacy: logging/setLevel (not implemented by MCPServer)", lambda: client.set_logging_level("info"), expect_error=True)
        await t.run("legacy: tools/call era", lambda: client.call_tool("era", {}))
        await t.run("legacy: tools/call echo", lambda: client.call_tool("echo", {"text": "old"}))
        await t.run("legacy: tools/call slow with progress", lambda: slow_with_progress(client))
        await t.run("legacy: tools/call slow cancelled", lambda: cancelled_slow(client, t))

        async def push(name: str, args: dict[str, Any]) -> Any:
            seen.elicitation.clear()
            seen.sampling.clear()
            seen.roots = 0
            r = await client.call_tool(name, args)
            return {"result": r, "elicitationsSeen": list(seen.elicitation), "samplingSeen": list(seen.sampling), "rootsRequests": seen.roots}

        await t.run("legacy: elicitation (push)", lambda: push("elicit", {"question": "Who are you?"}))
        await t.run("legacy: sampling (push)", lambda: push("sample", {"prompt": "Summarise Forge"}))
        await t.run("legacy: roots (push)", lambda: push("list_roots", {}))

        async def logging_step() -> Any:
            seen.logs.clear()
            r = await client.call_tool("log", {})
            await wait_for(lambda: len(seen.logs) >= 3, 3, "log messages")
            return {"result": r, "messages": list(seen.logs)}

        await t.run("legacy: logging via tool", logging_step)
        await t.run("legacy: resources/read template", lambda: client.read_resource("test://items/7"))
        await t.run("legacy: prompts/get greet", lambda: client.get_prompt("greet", {"name": "bob"}))

        async def unsolicited() -> Any:
            seen.notifications.clear()
            touch = await client.call_tool("touch_resource", {"uri": "test://static/counter"})
            signal = await client.call_tool("signal_tools_changed", {})
            await wait_for(lambda: len(seen.notifications) >= 2, 5, "notifications on the standalone stream")
            return {"touch": touch, "signal": signal, "notifications": sorted(seen.notifications)}

        await t.run("legacy: unsolicited notifications (standalone GET stream)", unsolicited)


async def policy_part(target: Any, t: Transcript, mode: str) -> None:
    seen = Seen()
    client = Client(target, mode=mode, **callbacks(seen))
    async with client:
        async def names() -> Any:
            return [tool.name for tool in (await client.list_tools()).tools]

        async def elicit() -> Any:
            r = await client.call_tool("elicit", {"question": "Who are you?"})
            return {"result": r, "elicitationsSeenByClient": len(seen.elicitation)}

        async def sample() -> Any:
            r = await client.call_tool("sample", {"prompt": "What is Forge?"})
            return {"result": r, "samplingRequestsSeenByClient": len(seen.sampling)}

        await t.run(f"{mode}: tools/list", names, expect_error=None)
        await t.run(f"{mode}: tools/call echo", lambda: client.call_tool("echo", {"text": "hello forge"}), expect_error=None)
        await t.run(f"{mode}: tools/call add", lambda: client.call_tool("add", {"a": 2, "b": 40}), expect_error=None)
        await t.run(f"{mode}: elicitation via tool", elicit, expect_error=None)
        await t.run(f"{mode}: sampling via tool", sample, expect_error=None)


def _const(v: Any) -> Callable[[], Awaitable[Any]]:
    async def f() -> Any:
        return v

    return f


async def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--ca", help="PEM file with the CA that signed the server certificate")
    ap.add_argument("--bearer", help="access token sent as `Authorization: Bearer` with every request")
    ap.add_argument("--scenario", choices=["full", "policy"], default="full")
    args = ap.parse_args()
    headers = {"Authorization": f"Bearer {args.bearer}"} if args.bearer else {}
    verify: Any = True
    if args.ca:
        verify = ssl.create_default_context(cafile=args.ca)
    t = Transcript()

    parts: list[Callable[[Any, Transcript], Awaitable[None]]] = [modern_part, legacy_part]
    if args.scenario == "policy":
        parts = [lambda target, t: policy_part(target, t, "auto"), lambda target, t: policy_part(target, t, "legacy")]
    for part in parts:
        async with httpx2.AsyncClient(verify=verify, headers=headers, timeout=httpx2.Timeout(30, read=300)) as http:
            try:
                await part(streamable_http_client(args.url, http_client=http), t)
            except Exception as e:  # noqa: BLE001
                t.steps.append({"step": f"{part.__name__} aborted", "ok": False, "error": error_info(e)})
                t.failures.append(f"{part.__name__}: {''.join(traceback.format_exception(e))}")

    print(json.dumps({"scenario": "py" if args.scenario == "full" else "py-policy", "steps": t.steps}, indent=2, sort_keys=True))
    for f in t.failures:
        err("FAILED", f)
    return 1 if t.failures else 0


if __name__ == "__main__":
    sys.exit(anyio.run(main))
