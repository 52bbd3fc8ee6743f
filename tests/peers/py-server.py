#!/usr/bin/env python3
"""Forge test peer: MCP server built on the Python SDK (mcp 2.x, MCPServer).

    .venv/bin/python py-server.py --port N [--record FILE]

Serves Streamable HTTP at /mcp on 127.0.0.1. The SDK routes each request by its
MCP-Protocol-Version header: 2026-07-28 requests are served statelessly (server/discover,
input_required multi round-trips, subscriptions/listen); 2025-era clients get the initialize
handshake with an Mcp-Session-Id session (push elicitation/sampling/roots, standalone GET
stream, DELETE). Prints `LISTENING <port>` on stdout once ready; logs go to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import logging
import socket
import sys
from typing import Annotated, Any

import anyio
import uvicorn
from pydantic import BaseModel, Field

from mcp.server.mcpserver import (
    AcceptedElicitation,
    Context,
    Elicit,
    ElicitationResult,
    ListRoots,
    MCPServer,
    Resolve,
    Sample,
)
from mcp.server.mcpserver.prompts.base import AssistantMessage, UserMessage
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import (
    CallToolResult,
    Completion,
    CompletionArgument,
    CompletionContext,
    CreateMessageResult,
    ElicitRequest,
    ElicitRequestFormParams,
    ElicitResult,
    InputRequiredResult,
    ListRootsResult,
    PromptReference,
    ResourceTemplateReference,
    SamplingMessage,
    TextContent,
)

logger = logging.getLogger("py-server")

ITEM_IDS = ["1", "2", "3", "10", "11"]
NAMES = ["alice", "bob", "carol", "carlos"]
BLOB = bytes(range(16))

# Process-wide state is keyed by a client-chosen run id, so runs never see each other.
slow_runs: dict[str, str] = {}

mcp = MCPServer(
    "forge-py-peer",
    title="Forge Python test peer",
    version="3.0.0",
    instructions="Forge py test peer: deterministic tools, resources and prompts for gateway tests.",
    log_level="WARNING",
)


# ----------------------------------------------------------------------------- tools


@mcp.tool(title="Echo")
def echo(text: str) -> str:
    """Echo the given text."""
    return f"echo: {text}"


class Sum(BaseModel):
    sum: float


@mcp.tool()
def add(a: float, b: float) -> Sum:
    """Add two numbers (structured output)."""
    return Sum(sum=a + b)


@mcp.tool()
def fail() -> str:
    """Always fails (the SDK turns the exception into an isError result)."""
    raise ValueError("deliberate failure")


@mcp.tool()
async def slow(steps: int, delay_ms: int, ctx: Context, run_id: str | None = None) -> str:
    """Counts to `steps`, sleeping `delay_ms` per step, reporting progress; honours cancellation."""
    if run_id:
        slow_runs[run_id] = "running"
    try:
        for i in range(1, steps + 1):
            await anyio.sleep(delay_ms / 1000)
            await ctx.report_progress(i, total=steps, message=f"step {i}")
    except anyio.get_cancelled_exc_class():
        if run_id:
            slow_runs[run_id] = "cancelled"
        logger.warning("slow run %s cancelled", run_id)
        raise
    if run_id:
        slow_runs[run_id] = "completed"
    await anyio.sleep(0.02)
    return f"slow done after {steps} steps"


@mcp.tool()
async def slow_status(run_id: str) -> dict[str, str]:
    """How the `slow` run with this run_id ended (waits up to 3 s while it runs)."""
    with anyio.move_on_after(3):
        while slow_runs.get(run_id) == "running":
            await anyio.sleep(0.01)
    return {"lastSlow": slow_runs.get(run_id, "unknown")}


class Answer(BaseModel):
    name: str
    count: int = Field(default=0, ge=0)


async def ask_answer(question: str) -> Elicit[Answer]:
    return Elicit(question, Answer)


@mcp.tool()
async def elicit(question: str, answer: Annotated[ElicitationResult[Answer], Resolve(ask_answer)]) -> dict[str, Any]:
    """Asks the user (push elicitation/create on 2025 sessions, input_required on 2026-07-28)."""
    if isinstance(answer, AcceptedElicitation):
        return {"action": "accept", "name": answer.data.name, "count": answer.data.count}
    return {"action": type(answer).__name__}


def ask_sample(prompt: str) -> Sample:
    return Sample([SamplingMessage(role="user", content=TextContent(type="text", text=prompt))], max_tokens=64)


@mcp.tool()
async def sample(prompt: str, result: Annotated[CreateMessageResult, Resolve(ask_sample)]) -> dict[str, Any]:
    """Asks the client to sample (push or input_required, depending on the era)."""
    return {"model": result.model, "role": result.role, "content": result.content.model_dump(exclude_none=True)}


def ask_roots() -> ListRoots:
    return ListRoots()


@mcp.tool()
async def list_roots(roots: Annotated[ListRootsResult, Resolve(ask_roots)]) -> list[dict[str, Any]]:
    """Asks the client for its roots (push or input_required, depending on the era)."""
    return [r.model_dump(mode="json", exclude_none=True) for r in roots.roots]


CONFIRM_SCHEMA = {"type": "object", "properties": {"confirm": {"type": "boolean"}}, "required": ["confirm"]}
SCOPE_SCHEMA = {"type": "object", "properties": {"scope": {"type": "string", "enum": ["all", "sessions", "cache"]}}, "required": ["scope"]}


def _accepted(ctx: Context, key: str) -> dict[str, Any] | None:
    r = (ctx.input_responses or {}).get(key)
    if isinstance(r, ElicitResult) and r.action == "accept" and r.content is not None:
        return dict(r.content)
    return None


@mcp.tool()
async def mrtr_sequence(ctx: Context) -> CallToolResult | InputRequiredResult:
    """2026-07-28 only: two input_required rounds carrying requestState (confirm, then scope)."""
    if ctx.request_state != "confirmed":
        ok = _accepted(ctx, "confirm")
        if not ok or ok.get("confirm") is not True:
            return InputRequiredResult(
                input_requests={"confirm": ElicitRequest(params=ElicitRequestFormParams(message="Really wipe?", requested_schema=CONFIRM_SCHEMA))}
            )
        return InputRequiredResult(
            input_requests={"scope": ElicitRequest(params=ElicitRequestFormParams(message="Which scope?", requested_schema=SCOPE_SCHEMA))},
            request_state="confirmed",
        )
    scope = _accepted(ctx, "scope")
    if not scope:
        return InputRequiredResult(
            input_requests={"scope": ElicitRequest(params=ElicitRequestFormParams(message="Which scope?", requested_schema=SCOPE_SCHEMA))},
            request_state="confirmed",
        )
    return CallToolResult(content=[TextContent(type="text", text=f"wiped {scope['scope']}")])


@mcp.tool()
async def log(ctx: Context) -> str:
    """Logs at debug, info, warning and error (level filter: logging/setLevel or per-request logLevel)."""
    for level in ("debug", "info", "warning", "error"):
        await ctx.log(level, {"msg": f"message at {level}"}, logger_name="forge-peer")
    await anyio.sleep(0.02)
    return "logged"


@mcp.tool()
async def touch_resource(uri: str, ctx: Context) -> dict[str, Any]:
    """Sends notifications/resources/updated: to subscriptions/listen streams and to a 2025 session's stream."""
    await ctx.notify_resource_updated(uri)
    if ctx.protocol_version != "2026-07-28":
        await ctx.session.send_resource_updated(uri)
    return {"uri": uri, "published": True}


@mcp.tool()
async def signal_tools_changed(ctx: Context) -> str:
    """Sends notifications/tools/list_changed (listen streams and 2025 sessions)."""
    await ctx.notify_tools_changed()
    if ctx.protocol_version != "2026-07-28":
        await ctx.session.send_tool_list_changed()
    return "published tools/list_changed"


@mcp.tool()
async def era(ctx: Context) -> str:
    """The protocol version this request was served at."""
    return ctx.protocol_version or "unknown"


# ----------------------------------------------------------------------------- resources


@mcp.resource("test://static/hello", name="hello", title="Hello", description="A static text resource", mime_type="text/plain")
def hello() -> str:
    return "Hello from the py peer"


@mcp.resource("test://static/counter", name="counter", description="Subscribable resource", mime_type="application/json")
def counter() -> str:
    return json.dumps({"counter": True})


@mcp.resource("test://static/blob", name="blob", description="16 bytes 0x00..0x0f", mime_type="application/octet-stream")
def blob() -> bytes:
    return BLOB


@mcp.resource("test://items/{id}", name="item", description="Items by id", mime_type="text/plain")
def item(id: str) -> str:
    return f"item {id}"


# ----------------------------------------------------------------------------- prompts


@mcp.prompt(title="Greeting")
def greet(name: str, style: str = "plain") -> list[UserMessage]:
    """Greets someone."""
    return [UserMessage(f"Greet {name} in a {style} style.")]


@mcp.prompt()
def simple() -> list[UserMessage | AssistantMessage]:
    """A prompt without arguments."""
    return [UserMessage("Say something simple."), AssistantMessage("Something simple.")]


@mcp.completion()
async def complete(
    ref: PromptReference | ResourceTemplateReference, argument: CompletionArgument, context: CompletionContext | None
) -> Completion | None:
    if isinstance(ref, PromptReference) and ref.name == "greet" and argument.name == "name":
        return Completion(values=[n for n in NAMES if n.startswith(argument.value)])
    if isinstance(ref, ResourceTemplateReference) and argument.name == "id":
        return Completion(values=[i for i in ITEM_IDS if i.startswith(argument.value)])
    return None


# ----------------------------------------------------------------------------- HTTP plumbing


class RecordingMiddleware:
    """ASGI middleware: appends every received JSON-RPC message (and bare GET/DELETE) to a JSONL file."""

    def __init__(self, app: Any, path: str | None) -> None:
        self.app = app
        self.path = path

    def write(self, entry: dict[str, Any]) -> None:
        if self.path:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(entry, separators=(",", ":")) + "\n")

    @staticmethod
    def describe(m: Any) -> dict[str, Any]:
        if isinstance(m, dict) and isinstance(m.get("method"), str):
            e: dict[str, Any] = {"kind": "request" if "id" in m else "notification", "method": m["method"]}
            if "id" in m:
                e["id"] = m["id"]
            if "params" in m:
                e["params"] = m["params"]
            return e
        if isinstance(m, dict) and ("result" in m or "error" in m):
            e = {"kind": "response", "id": m.get("id")}
            for k in ("result", "error"):
                if k in m:
                    e[k] = m[k]
            return e
        return {"kind": "invalid", "raw": m}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"] + (("?" + scope["query_string"].decode()) if scope.get("query_string") else "")
        headers: dict[str, str] = {}
        for k, v in scope["headers"]:
            key = k.decode("latin-1")
            headers[key] = headers[key] + ", " + v.decode("latin-1") if key in headers else v.decode("latin-1")
        http = {"method": scope["method"], "path": path, "headers": headers}
        if scope["method"] != "POST":
            self.write({"kind": "http", "http": http})
            return await self.app(scope, receive, send)
        body = b""
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            body += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        try:
            parsed = json.loads(body)
            for m in parsed if isinstance(parsed, list) else [parsed]:
                self.write({**self.describe(m), "http": http})
        except ValueError:
            self.write({"kind": "invalid", "raw": body.decode("utf-8", "replace"), "http": http})
        replayed = False

        async def replay() -> Any:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--record")
    args = ap.parse_args()
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="[py-server] %(levelname)s %(name)s: %(message)s")

    app = mcp.streamable_http_app(
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(RecordingMiddleware(app, args.record), log_level="warning", lifespan="on"))

    async def announce() -> None:
        while not server.started:
            await asyncio.sleep(0.02)
        print(f"LISTENING {port}", flush=True)

    asyncio.get_running_loop().create_task(announce())
    await server.serve(sockets=[sock])


if __name__ == "__main__":
    asyncio.run(main())
