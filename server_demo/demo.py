"""The demo content: the seeds' calculator, showcase tools, and the conformance fixture set.

Everything here is plain handlers registered on a :class:`~server_demo.core.Server`;
no transport appears. The ``test_*`` names, ``test://`` resources and
``test_*`` prompts are the fixtures the official conformance suite expects.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import struct
import zlib
from collections import deque
from typing import Any

import mcp_types as mt

from pyodide_transport.apps import APP_MIME_TYPE

from .core import RequestContext, Server, ToolReturn
from .fixtures_modern import register_modern_fixtures

__all__ = [
    "APP_MIME_TYPE",
    "CALCULATOR_APP_URI",
    "COUNTER_URI",
    "HISTORY_LIMIT",
    "XSS_TEXT",
    "build_demo_server",
    "tiny_png",
    "tiny_wav",
]

COUNTER_URI = "demo://counter"
"""A resource that ticks while someone is subscribed to it."""

XSS_TEXT = "Untrusted text: <img src=x onerror=alert(1)> and <script>alert('xss')</script> must render as text."
"""What the ``html_injection`` tool returns; a page must show it, never run it."""

CALCULATOR_APP_URI = "ui://demo/calculator-history"
"""The MCP App (SEP-1865) of the ``calculator_history`` tool: a chart of the ``calculate`` calls."""

HISTORY_LIMIT = 50
"""How many ``calculate`` results a server instance remembers for the app."""


def tiny_png(width: int = 8, height: int = 8, rgb: tuple[int, int, int] = (220, 40, 40)) -> bytes:
    """A solid-colour PNG built from scratch (no imaging library)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" + bytes(rgb) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(row * height))
        + chunk(b"IEND", b"")
    )


def tiny_wav(duration_s: float = 0.25, freq: float = 440.0, rate: int = 8000) -> bytes:
    """A short 8-bit mono sine tone as a WAV file."""
    samples = bytes(int(128 + 100 * math.sin(2 * math.pi * freq * i / rate)) for i in range(int(rate * duration_s)))
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate, 1, 8)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(samples)) + samples
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _text(text: str) -> mt.TextContent:
    return mt.TextContent(text=text)


def _obj(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return schema


def build_demo_server(*, counter_interval: float = 1.0, step_delay: float = 0.05) -> Server:
    """Build the demo server.

    Args:
        counter_interval: Seconds between ticks of ``demo://counter`` while subscribed.
        step_delay: Seconds between steps of the slow tools (progress, logging).
    """
    server = Server(
        "pyodide-transport-demo",
        "0.1.0",
        title="pyodide-transport demo server",
        instructions="A demo MCP server: a calculator, content showcase tools, resources, prompts, "
        "and the fixture set of the MCP conformance suite.",
    )
    _register_showcase(server, counter_interval, step_delay)
    _register_conformance(server, step_delay)
    register_modern_fixtures(server)
    return server


def _register_showcase(server: Server, counter_interval: float, step_delay: float) -> None:
    png, wav = tiny_png(), tiny_wav()
    history: deque[dict[str, Any]] = deque(maxlen=HISTORY_LIMIT)  # this server instance's calculations
    _register_app(server, history)

    @server.tool(
        "calculate",
        title="Calculator",
        description="Apply an arithmetic operation to two numbers.",
        input_schema=_obj(
            {
                "a": {"type": "number", "description": "First operand"},
                "b": {"type": "number", "description": "Second operand"},
                "operation": {"type": "string", "enum": ["add", "subtract", "multiply", "divide"]},
            },
            ["a", "b"],
        ),
        output_schema=_obj({"result": {"type": "number"}, "expression": {"type": "string"}}, ["result"]),
        annotations=mt.ToolAnnotations(read_only_hint=True, idempotent_hint=True),
    )
    async def calculate(ctx: RequestContext, args: dict[str, Any]) -> ToolReturn:
        a, b, op = args["a"], args["b"], args.get("operation", "add")
        if op == "divide" and b == 0:
            raise ValueError("division by zero")
        result = {"add": a + b, "subtract": a - b, "multiply": a * b, "divide": a / b if b else 0}[op]
        symbol = {"add": "+", "subtract": "-", "multiply": "*", "divide": "/"}[op]
        structured = {"result": result, "expression": f"{a} {symbol} {b} = {result}"}
        history.append({"a": a, "b": b, "operation": op, **structured})
        return mt.CallToolResult(content=[_text(json.dumps(structured))], structured_content=structured)

    @server.tool(
        "echo",
        description="Echo a message back.",
        input_schema=_obj({"message": {"type": "string"}}, ["message"]),
    )
    async def echo(ctx: RequestContext, args: dict[str, Any]) -> ToolReturn:
        return str(args["message"])

    @server.tool(
        "long_running",
        description="Count through steps, reporting progress; stops when cancelled.",
        input_schema=_obj(
            {
                "steps": {"type": "integer", "description": "How many steps (1-1000)", "default": 10},
                "delay_ms": {"type": "integer", "description": "Milliseconds per step", "default": 200},
            }
        ),
    )
    async def long_running(ctx: RequestContext, args: dict[str, Any]) -> ToolReturn:
        steps = max(1, min(int(args.get("steps", 10)), 1000))
        delay = max(0, min(int(args.get("delay_ms", 200)), 10_000)) / 1000
        for step in range(1, steps + 1):
            await asyncio.sleep(delay)  # a cancellation lands here and stops the loop
            await ctx.progress(step, steps, f"step {step} of {steps}")
        return f"completed {steps} steps"

    @server.tool(
        "log_messages",
        description="Emit log messages at several levels.",
        input_schema=_obj({"count": {"type": "integer", "default": 4}}),
    )
    async def log_messages(ctx: RequestContext, args: dict[str, Any]) -> ToolReturn:
        levels: list[mt.LoggingLevel] = ["debug", "info", "warning", "error"]
        count = max(1, min(int(args.get("count", 4)), 20))
        for i in range(count):
            await ctx.log(levels[i % len(levels)], f"log message {i + 1} of {count}", "demo")
            await asyncio.sleep(step_delay)
        return f"sent {count} log messages"

    @server.tool("show_image", description="Return a small PNG image.")
    async def show_image(ctx: RequestContext, args: dict[str, Any]) -> ToolReturn:
        return [_text("A red square:"), mt.ImageContent(data=_b64(png), mime_type="image/png")]

    @server.tool("play_audio", description="Return a short WAV tone.")
    async def play_audio(ctx: RequestContext, args: dict[str, Any]) -> ToolReturn:
        return [mt.AudioContent(data=_b64(wav), mime_type="audio/wav")]

    @server.tool("link_resource", description="Return a link to a resource.")
    async def link_resource(ctx: RequestContext, args: dict[str, Any]) -> ToolReturn:
        link = mt.ResourceLink(uri="demo://readme", name="readme", mime_type="text/markdown", description="The readme")
        return [_text("See the readme:"), link]

    @server.tool("embed_resource", description="Return a resource embedded in the result.")
    async def embed_resource(ctx: RequestContext, args: dict[str, Any]) -> ToolReturn:
        contents = mt.TextResourceContents(uri="demo://readme", mime_type="text/markdown", text=_README)
        return [mt.EmbeddedResource(resource=contents)]

    @server.tool(
        "html_injection",
        description="Return text containing HTML and script tags (a page must display it as text).",
    )
    async def html_injection(ctx: RequestContext, args: dict[str, Any]) -> ToolReturn:
        return XSS_TEXT

    @server.tool(
        "ask_llm",
        description="Ask the client's LLM (sampling) to answer a question.",
        input_schema=_obj({"question": {"type": "string"}}, ["question"]),
    )
    async def ask_llm(ctx: RequestContext, args: dict[str, Any]) -> ToolReturn:
        message = mt.SamplingMessage(role="user", content=_text(str(args["question"])))
        result = await ctx.sample([message], max_tokens=200)
        answer = result.content.text if isinstance(result.content, mt.TextContent) else str(result.content)
        return f"LLM ({result.model}) says: {answer}"

    @server.tool(
        "ask_user",
        description="Ask the user (elicitation) for their name and favourite colour.",
        input_schema=_obj({"message": {"type": "string", "default": "Tell me about yourself"}}),
    )
    async def ask_user(ctx: RequestContext, args: dict[str, Any]) -> ToolReturn:
        schema = _obj(
            {
                "name": {"type": "string", "description": "Your name"},
                "colour": {"type": "string", "enum": ["red", "green", "blue"], "default": "blue"},
            },
            ["name"],
        )
        result = await ctx.elicit(str(args.get("message", "Tell me about yourself")), schema)
        if result.action != "accept":
            return f"The user chose to {result.action}."
        return f"Hello {(result.content or {}).get('name')}, you like {(result.content or {}).get('colour')}."

    @server.tool("list_client_roots", description="Ask the client for its roots.")
    async def list_client_roots(ctx: RequestContext, args: dict[str, Any]) -> ToolReturn:
        roots = await ctx.list_roots()
        return "\n".join(f"{r.name or ''} {r.uri}".strip() for r in roots.roots) or "(no roots)"

    @server.resource("demo://readme", name="readme", description="What this server is.", mime_type="text/markdown")
    async def readme(ctx: RequestContext) -> str | bytes:
        return _README

    @server.resource("demo://logo.png", name="logo", description="A tiny PNG.", mime_type="image/png")
    async def logo(ctx: RequestContext) -> str | bytes:
        return png

    counter = {"value": 0}
    ticker: dict[str, asyncio.Task[None]] = {}

    @server.resource(COUNTER_URI, name="counter", description="Ticks while subscribed.", mime_type="application/json")
    async def read_counter(ctx: RequestContext) -> str | bytes:
        return json.dumps({"value": counter["value"]})

    async def tick() -> None:
        while True:
            await asyncio.sleep(counter_interval)
            counter["value"] += 1
            await server.notify_resource_updated(COUNTER_URI)

    @server.tool(
        "bump_counter",
        description="Advance demo://counter by one now and tell its subscribers.",
        input_schema=_obj({}),
    )
    async def bump_counter(ctx: RequestContext, args: dict[str, Any]) -> ToolReturn:
        counter["value"] += 1
        await server.notify_resource_updated(COUNTER_URI)
        return json.dumps({"value": counter["value"]})

    def on_watch(uri: str, count: int) -> None:
        if uri != COUNTER_URI:
            return
        task = ticker.get(uri)
        if count > 0 and (task is None or task.done()):
            ticker[uri] = asyncio.get_running_loop().create_task(tick())
        elif count == 0 and task is not None:
            task.cancel()
            del ticker[uri]

    server.on_watch_change(on_watch)

    @server.resource_template(
        "demo://greeting/{name}", name="greeting", description="A greeting for anyone.", mime_type="text/plain"
    )
    async def greeting(ctx: RequestContext, uri: str, variables: dict[str, str]) -> str | bytes:
        return f"Hello, {variables['name']}!"

    names = ["Ada", "Alan", "Barbara", "Grace", "Guido", "Linus", "Margaret"]

    @server.completion("ref/resource", "demo://greeting/{name}", "name")
    async def complete_name(value: str, context: dict[str, str]) -> list[str]:
        return [n for n in names if n.lower().startswith(value.lower())]

    @server.prompt(
        "code_review",
        description="Ask for a review of a piece of code.",
        arguments=[
            mt.PromptArgument(name="code", description="The code to review", required=True),
            mt.PromptArgument(name="language", description="Its programming language", required=False),
        ],
    )
    async def code_review(ctx: RequestContext, args: dict[str, str]) -> list[mt.PromptMessage]:
        language = args.get("language", "the given language")
        return [mt.PromptMessage(role="user", content=_text(f"Review this {language} code:\n\n{args['code']}"))]

    languages = ["c", "go", "javascript", "python", "rust", "typescript"]

    @server.completion("ref/prompt", "code_review", "language")
    async def complete_language(value: str, context: dict[str, str]) -> list[str]:
        return [lang for lang in languages if lang.startswith(value.lower())]


def _history_result(history: deque[dict[str, Any]]) -> mt.CallToolResult:
    entries = list(history)
    lines = [str(entry["expression"]) for entry in entries] or ["(no calculations yet)"]
    text = f"{len(entries)} calculation(s):\n" + "\n".join(lines)
    return mt.CallToolResult(content=[_text(text)], structured_content={"history": entries, "count": len(entries)})


def _register_app(server: Server, history: deque[dict[str, Any]]) -> None:
    """The MCP App: ``calculator_history`` (model and app), its app-only and model-only helpers, its HTML."""
    history_schema = _obj({"history": {"type": "array", "items": {"type": "object"}}, "count": {"type": "integer"}})

    @server.tool(
        "calculator_history",
        title="Calculator history chart",
        description="The results of the latest calculate calls, drawn as a chart by the MCP App "
        f"{CALCULATOR_APP_URI} (text for hosts without apps).",
        input_schema=_obj({"title": {"type": "string", "description": "The chart's title", "default": "History"}}),
        output_schema=history_schema,
        annotations=mt.ToolAnnotations(read_only_hint=True),
        meta={"ui": {"resourceUri": CALCULATOR_APP_URI, "visibility": ["model", "app"]}},
    )
    async def calculator_history(ctx: RequestContext, args: dict[str, Any]) -> ToolReturn:
        return _history_result(history)

    @server.tool(
        "calculator_history_clear",
        title="Clear the calculator history",
        description="Forget every calculation (called by the calculator app only).",
        output_schema=history_schema,
        meta={"ui": {"resourceUri": CALCULATOR_APP_URI, "visibility": ["app"]}},
    )
    async def calculator_history_clear(ctx: RequestContext, args: dict[str, Any]) -> ToolReturn:
        history.clear()
        return _history_result(history)

    @server.tool(
        "calculator_history_text",
        title="Calculator history as text",
        description="The calculations as plain text, for the model only: apps may not call it.",
        annotations=mt.ToolAnnotations(read_only_hint=True),
        meta={"ui": {"visibility": ["model"]}},
    )
    async def calculator_history_text(ctx: RequestContext, args: dict[str, Any]) -> ToolReturn:
        return str(_history_result(history).content[0].text)  # type: ignore[union-attr]

    @server.resource(
        CALCULATOR_APP_URI,
        name="calculator-history-app",
        title="Calculator history app",
        description="An MCP App: an SVG chart of the calculator's history, with buttons that call tools.",
        mime_type=APP_MIME_TYPE,
        meta={"ui": {"csp": {"connectDomains": [], "resourceDomains": []}, "prefersBorder": True}},
    )
    async def calculator_app(ctx: RequestContext) -> str:
        return CALCULATOR_APP_HTML


def _register_conformance(server: Server, step_delay: float) -> None:
    png, wav = tiny_png(1, 1, (255, 0, 0)), tiny_wav(0.05)
    no_args = _obj({})

    @server.tool("test_simple_text", description="Returns simple text.", input_schema=no_args)
    async def simple_text(ctx: RequestContext, args: dict[str, Any]) -> ToolReturn:
        return "This is a simple text response for testing."

    @server.tool("test_image_content", description="Returns an image.", input_schema=no_args)
    async def image_content(ctx: RequestContext, args: dict[str, Any]) -> ToolReturn:
        return [mt.ImageContent(data=_b64(png), mime_type="image/png")]

    @server.tool("test_audio_content", description="Returns audio.", input_schema=no_args)
    async def audio_content(ctx: RequestContext, args: dict[str, Any]) -> ToolReturn:
        return [mt.AudioContent(data=_b64(wav), mime_type="audio/wav")]

    @server.tool("test_embedded_resource", description="Returns an embedded resource.", input_schema=no_args)
    async def embedded(ctx: RequestContext, args: dict[str, Any]) -> ToolReturn:
        contents = mt.TextResourceContents(
            uri="test://embedded-resource", mime_type="text/plain", text="This is an embedded resource content."
        )
        return [mt.EmbeddedResource(resource=contents)]

    @server.tool("test_multiple_content_types", description="Returns mixed content.", input_schema=no_args)
    async def mixed(ctx: RequestContext, args: dict[str, Any]) -> ToolReturn:
        contents = mt.TextResourceContents(
            uri="test://mixed-content-resource",
            mime_type="application/json",
            text=json.dumps({"test": "data", "value": 123}),
        )
        return [
            _text("Multiple content types test:"),
            mt.ImageContent(data=_b64(png), mime_type="image/png"),
            mt.EmbeddedResource(resource=contents),
        ]

    @server.tool("test_tool_with_logging", description="Logs while running.", input_schema=no_args)
    async def with_logging(ctx: RequestContext, args: dict[str, Any]) -> ToolReturn:
        await ctx.log("info", "Tool execution started")
        await asyncio.sleep(step_delay)
        await ctx.log("info", "Tool processing data")
        await asyncio.sleep(step_delay)
        await ctx.log("info", "Tool execution completed")
        return "Tool with logging executed successfully"

    @server.tool("test_error_handling", description="Always fails.", input_schema=no_args)
    async def error_handling(ctx: RequestContext, args: dict[str, Any]) -> ToolReturn:
        raise RuntimeError("This tool intentionally returns an error for testing")

    @server.tool("test_tool_with_progress", description="Reports progress.", input_schema=no_args)
    async def with_progress(ctx: RequestContext, args: dict[str, Any]) -> ToolReturn:
        for value in (0, 50, 100):
            await ctx.progress(value, 100)
            if value < 100:
                await asyncio.sleep(step_delay)
        return "Tool with progress executed successfully"

    @server.tool(
        "test_sampling",
        description="Asks the client's LLM.",
        input_schema=_obj({"prompt": {"type": "string", "description": "The prompt"}}, ["prompt"]),
    )
    async def sampling(ctx: RequestContext, args: dict[str, Any]) -> ToolReturn:
        message = mt.SamplingMessage(role="user", content=_text(str(args["prompt"])))
        result = await ctx.sample([message], max_tokens=100)
        answer = result.content.text if isinstance(result.content, mt.TextContent) else str(result.content)
        return f"LLM response: {answer}"

    @server.tool(
        "test_elicitation",
        description="Asks the user.",
        input_schema=_obj({"message": {"type": "string", "description": "The message"}}, ["message"]),
    )
    async def elicitation(ctx: RequestContext, args: dict[str, Any]) -> ToolReturn:
        schema = _obj(
            {
                "username": {"type": "string", "description": "User's response"},
                "email": {"type": "string", "description": "User's email address"},
            },
            ["username", "email"],
        )
        result = await ctx.elicit(str(args["message"]), schema)
        return f"User response: action={result.action}, content={json.dumps(result.content)}"

    @server.tool("test_elicitation_sep1034_defaults", description="Elicits with defaults.", input_schema=no_args)
    async def elicitation_defaults(ctx: RequestContext, args: dict[str, Any]) -> ToolReturn:
        schema = _obj(
            {
                "name": {"type": "string", "description": "User name", "default": "John Doe"},
                "age": {"type": "integer", "description": "User age", "default": 30},
                "score": {"type": "number", "description": "User score", "default": 95.5},
                "status": {
                    "type": "string",
                    "description": "User status",
                    "enum": ["active", "inactive", "pending"],
                    "default": "active",
                },
                "verified": {"type": "boolean", "description": "Verification status", "default": True},
            }
        )
        result = await ctx.elicit("Please review and update the form fields with defaults", schema)
        return f"Elicitation completed: action={result.action}, content={json.dumps(result.content)}"

    @server.tool("test_elicitation_sep1330_enums", description="Elicits with enum variants.", input_schema=no_args)
    async def elicitation_enums(ctx: RequestContext, args: dict[str, Any]) -> ToolReturn:
        options = ["option1", "option2", "option3"]
        titled = [
            {"const": "value1", "title": "First Option"},
            {"const": "value2", "title": "Second Option"},
            {"const": "value3", "title": "Third Option"},
        ]
        schema = _obj(
            {
                "untitledSingle": {"type": "string", "description": "Pick one", "enum": options},
                "titledSingle": {"type": "string", "description": "Pick one", "oneOf": titled},
                "legacyEnum": {
                    "type": "string",
                    "description": "Pick one (legacy)",
                    "enum": ["opt1", "opt2", "opt3"],
                    "enumNames": ["Option One", "Option Two", "Option Three"],
                },
                "untitledMulti": {
                    "type": "array",
                    "description": "Pick several",
                    "items": {"type": "string", "enum": options},
                },
                "titledMulti": {"type": "array", "description": "Pick several", "items": {"anyOf": titled}},
            }
        )
        result = await ctx.elicit("Please choose from the enum options", schema)
        return f"Elicitation completed: action={result.action}, content={json.dumps(result.content)}"

    @server.tool(
        "json_schema_2020_12_tool",
        description="Tool with JSON Schema 2020-12 features",
        input_schema={  # SEP-1613 and SEP-2106: the vocabulary a server may use, kept byte for byte
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "$defs": {
                "address": {
                    "$anchor": "addressDef",
                    "type": "object",
                    "properties": {"street": {"type": "string"}, "city": {"type": "string"}},
                }
            },
            "properties": {
                "name": {"type": "string"},
                "address": {"$ref": "#/$defs/address"},
                "contactMethod": {"type": "string", "enum": ["phone", "email"]},
                "phone": {"type": "string"},
                "email": {"type": "string"},
            },
            "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
            "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
            "then": {"required": ["phone"]},
            "else": {"required": ["email"]},
            "additionalProperties": False,
        },
    )
    async def json_schema_tool(ctx: RequestContext, args: dict[str, Any]) -> ToolReturn:
        return f"Received: {json.dumps(args)}"

    @server.tool(
        "test_reconnection",
        description="Closes its SSE stream mid-call; the result arrives after the client reconnects.",
        input_schema=no_args,
    )
    async def reconnection(ctx: RequestContext, args: dict[str, Any]) -> ToolReturn:
        await asyncio.sleep(step_delay)
        ctx.close_stream()
        await asyncio.sleep(max(step_delay, 0.1) * 4)
        return "Reconnection test completed successfully"

    @server.resource(
        "test://static-text", name="static-text", description="A static text resource.", mime_type="text/plain"
    )
    async def static_text(ctx: RequestContext) -> str | bytes:
        return "This is the content of the static text resource."

    @server.resource(
        "test://static-binary", name="static-binary", description="A static binary resource.", mime_type="image/png"
    )
    async def static_binary(ctx: RequestContext) -> str | bytes:
        return png

    @server.resource("test://watched-resource", name="watched-resource", description="A resource to subscribe to.")
    async def watched(ctx: RequestContext) -> str | bytes:
        return "Watched resource content."

    @server.resource_template(
        "test://template/{id}/data",
        name="template-data",
        description="A resource template with an id.",
        mime_type="application/json",
    )
    async def template_data(ctx: RequestContext, uri: str, variables: dict[str, str]) -> str | bytes:
        ident = variables["id"]
        return json.dumps({"id": ident, "templateTest": True, "data": f"Data for ID: {ident}"})

    @server.prompt("test_simple_prompt", description="A simple prompt without arguments.")
    async def simple_prompt(ctx: RequestContext, args: dict[str, str]) -> list[mt.PromptMessage]:
        return [mt.PromptMessage(role="user", content=_text("This is a simple prompt for testing."))]

    @server.prompt(
        "test_prompt_with_arguments",
        description="A prompt with arguments.",
        arguments=[
            mt.PromptArgument(name="arg1", description="First test argument", required=True),
            mt.PromptArgument(name="arg2", description="Second test argument", required=True),
        ],
    )
    async def prompt_with_args(ctx: RequestContext, args: dict[str, str]) -> list[mt.PromptMessage]:
        text = f"Prompt with arguments: arg1='{args['arg1']}', arg2='{args['arg2']}'"
        return [mt.PromptMessage(role="user", content=_text(text))]

    @server.prompt(
        "test_prompt_with_embedded_resource",
        description="A prompt with an embedded resource.",
        arguments=[mt.PromptArgument(name="resourceUri", description="URI of the resource to embed", required=True)],
    )
    async def prompt_embedded(ctx: RequestContext, args: dict[str, str]) -> list[mt.PromptMessage]:
        contents = mt.TextResourceContents(
            uri=args["resourceUri"], mime_type="text/plain", text="Embedded resource content for testing."
        )
        return [
            mt.PromptMessage(role="user", content=mt.EmbeddedResource(resource=contents)),
            mt.PromptMessage(role="user", content=_text("Please process the embedded resource above.")),
        ]

    @server.prompt("test_prompt_with_image", description="A prompt with an image.")
    async def prompt_image(ctx: RequestContext, args: dict[str, str]) -> list[mt.PromptMessage]:
        return [
            mt.PromptMessage(role="user", content=mt.ImageContent(data=_b64(png), mime_type="image/png")),
            mt.PromptMessage(role="user", content=_text("Please analyze the image above.")),
        ]

    words = ["paris", "park", "party", "test", "testing", "value"]

    @server.completion("ref/prompt", "test_prompt_with_arguments", "arg1")
    async def complete_arg1(value: str, context: dict[str, str]) -> list[str]:
        return [w for w in words if w.startswith(value.lower())]


_README = """# pyodide-transport demo server

One server core behind Streamable HTTP (three modes), WebSocket and stdio.
Try the calculator, the content showcase tools, the ticking `demo://counter`
resource, and the prompts.
"""


CALCULATOR_APP_HTML = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Calculator history</title>
<style>
:root { color-scheme: light dark; --fg: #1b1f24; --bg: #ffffff; --accent: #1f5fbf; --muted: #57606a; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6edf3; --bg: #0d1117; --accent: #79b8ff; --muted: #9da7b3; } }
html, body { margin: 0; background: var(--bg); color: var(--fg); font: 14px/1.4 system-ui, sans-serif; }
main { padding: 12px; }
h1 { font-size: 16px; margin: 0 0 8px; }
.bar { fill: var(--accent); }
.axis { stroke: var(--muted); stroke-width: 1; }
.label { fill: var(--fg); font-size: 10px; }
.row { display: flex; flex-wrap: wrap; gap: 6px; margin: 8px 0; }
button { font: inherit; padding: 4px 10px; border-radius: 6px; border: 1px solid var(--muted);
  background: transparent; color: var(--fg); cursor: pointer; }
button:focus-visible { outline: 2px solid var(--accent); outline-offset: 2px; }
.muted { color: var(--muted); }
.error { color: #c62828; }
#details { margin-top: 8px; }
#details li { padding: 2px 0; }
</style>
</head>
<body>
<main>
<h1 id="title">Calculator history</h1>
<p id="status" class="muted" role="status">connecting to the host…</p>
<p id="input" class="muted"></p>
<svg id="chart" width="100%" height="140" viewBox="0 0 320 140" role="img" aria-label="chart of results"></svg>
<p><span id="count">0</span> result(s); last: <span id="last">none</span></p>
<div class="row">
<button type="button" id="add">Add 2+3</button>
<button type="button" id="refresh">Reload history</button>
<button type="button" id="clear">Clear</button>
<button type="button" id="forbidden">Call a model-only tool</button>
<button type="button" id="toggle" aria-expanded="false">Show the list</button>
</div>
<p id="error" class="error" role="alert"></p>
<ol id="details" hidden></ol>
</main>
<script>
(function () {
  "use strict";
  var nextId = 1;
  var pending = {};
  var points = [];
  var $ = function (id) { return document.getElementById(id); };

  function post(message) { window.parent.postMessage(message, "*"); }
  function request(method, params) {
    var id = nextId++;
    post({ jsonrpc: "2.0", id: id, method: method, params: params || {} });
    return new Promise(function (resolve, reject) { pending[id] = { resolve: resolve, reject: reject }; });
  }
  function notify(method, params) { post({ jsonrpc: "2.0", method: method, params: params || {} }); }
  function reply(id, result) { post({ jsonrpc: "2.0", id: id, result: result }); }
  function log(text) { notify("notifications/message", { level: "info", logger: "calculator-app", data: text }); }

  function draw(history) {
    points = Array.isArray(history) ? history : [];
    var svg = $("chart");
    while (svg.firstChild) { svg.removeChild(svg.firstChild); }
    var ns = "http://www.w3.org/2000/svg";
    var axis = document.createElementNS(ns, "line");
    axis.setAttribute("x1", "10"); axis.setAttribute("y1", "120");
    axis.setAttribute("x2", "310"); axis.setAttribute("y2", "120");
    axis.setAttribute("class", "axis");
    svg.appendChild(axis);
    var values = points.map(function (p) { return Number(p.result) || 0; });
    var top = Math.max.apply(null, [1].concat(values.map(Math.abs)));
    var width = Math.max(4, Math.min(40, 300 / Math.max(1, values.length) - 4));
    values.forEach(function (value, i) {
      var h = Math.round(100 * Math.abs(value) / top);
      var rect = document.createElementNS(ns, "rect");
      rect.setAttribute("x", String(12 + i * (width + 4)));
      rect.setAttribute("y", String(120 - h));
      rect.setAttribute("width", String(width));
      rect.setAttribute("height", String(Math.max(1, h)));
      rect.setAttribute("class", "bar");
      rect.setAttribute("data-value", String(value));
      svg.appendChild(rect);
      var label = document.createElementNS(ns, "text");
      label.setAttribute("x", String(12 + i * (width + 4)));
      label.setAttribute("y", "134");
      label.setAttribute("class", "label");
      label.textContent = String(value);
      svg.appendChild(label);
    });
    $("count").textContent = String(points.length);
    $("last").textContent = points.length ? String(points[points.length - 1].expression) : "none";
    var list = $("details");
    while (list.firstChild) { list.removeChild(list.firstChild); }
    points.forEach(function (p) {
      var item = document.createElement("li");
      item.textContent = String(p.expression);
      list.appendChild(item);
    });
  }

  function showResult(result) {
    var data = result && result.structuredContent;
    if (data && Array.isArray(data.history)) { draw(data.history); }
  }

  function call(name, args) {
    $("error").textContent = "";
    return request("tools/call", { name: name, arguments: args || {} }).then(function (result) {
      if (result && result.isError) { throw { message: "the tool failed" }; }
      return result;
    }).catch(function (error) {
      $("error").textContent = name + " refused: " + String((error && error.message) || error);
      throw error;
    });
  }
  function reload() { return call("calculator_history", {}).then(showResult); }

  $("add").addEventListener("click", function () {
    call("calculate", { a: 2, b: 3, operation: "add" }).then(function (result) {
      $("last").textContent = String(result.structuredContent && result.structuredContent.expression);
      return reload();
    }).catch(function () {});
  });
  $("refresh").addEventListener("click", function () { reload().catch(function () {}); });
  $("clear").addEventListener("click", function () {
    call("calculator_history_clear", {}).then(showResult).catch(function () {});
  });
  $("forbidden").addEventListener("click", function () {
    call("calculator_history_text", {}).catch(function () {});
  });
  $("toggle").addEventListener("click", function () {
    var list = $("details");
    list.hidden = !list.hidden;
    $("toggle").setAttribute("aria-expanded", String(!list.hidden));
    $("toggle").textContent = list.hidden ? "Show the list" : "Hide the list";
  });

  var lastHeight = -1;
  var lastWidth = -1;
  function reportSize() {
    var height = Math.ceil(document.documentElement.getBoundingClientRect().height);
    var width = Math.ceil(document.documentElement.getBoundingClientRect().width);
    if (height !== lastHeight || width !== lastWidth) {
      lastHeight = height; lastWidth = width;
      notify("ui/notifications/size-changed", { width: width, height: height });
    }
  }

  window.addEventListener("message", function (event) {
    if (event.source !== window.parent) { return; }
    var m = event.data;
    if (!m || typeof m !== "object" || m.jsonrpc !== "2.0") { return; }
    if (m.method === undefined && m.id !== undefined) {
      var waiter = pending[m.id];
      if (waiter) {
        delete pending[m.id];
        if (m.error) { waiter.reject(m.error); } else { waiter.resolve(m.result); }
      }
      return;
    }
    var params = m.params || {};
    if (m.method === "ui/notifications/tool-input") {
      var args = params.arguments || {};
      if (typeof args.title === "string" && args.title) { $("title").textContent = args.title; }
      $("input").textContent = "tool input: " + JSON.stringify(args);
    } else if (m.method === "ui/notifications/tool-result") {
      $("status").textContent = "tool result received";
      showResult(params);
    } else if (m.method === "ui/notifications/tool-cancelled") {
      $("status").textContent = "the tool call was cancelled: " + String(params.reason || "");
    } else if (m.method === "ui/notifications/host-context-changed") {
      return;
    } else if (m.method === "ui/resource-teardown") {
      $("status").textContent = "torn down: " + String(params.reason || "");
      reply(m.id, {});
    } else if (m.method === "ping") {
      reply(m.id, {});
    } else if (m.id !== undefined) {
      post({ jsonrpc: "2.0", id: m.id, error: { code: -32601, message: "Method not found: " + m.method } });
    }
  });

  request("ui/initialize", {
    appInfo: { name: "calculator-history", version: "1.0.0" },
    appCapabilities: { availableDisplayModes: ["inline"] },
    protocolVersion: "2026-01-26"
  }).then(function (result) {
    var host = (result && result.hostInfo && result.hostInfo.name) || "a host";
    $("status").textContent = "connected to " + host;
    document.body.setAttribute("data-initialized", "true");
    notify("ui/notifications/initialized", {});
    log("calculator app ready");
    if (typeof ResizeObserver === "function") {
      new ResizeObserver(reportSize).observe(document.documentElement);
    }
    reportSize();
  }).catch(function (error) {
    $("status").textContent = "the host refused to initialize: " + String(error && error.message);
  });
})();
</script>
</body>
</html>
"""
"""The calculator history app: self-contained HTML5 (inline CSS, JS and SVG) speaking the MCP Apps protocol."""
