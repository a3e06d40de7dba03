"""The 2026-07-28 fixtures of the conformance suite: input-required rounds (SEP-2322) and SEP-2575 probes.

The SEP-2575 probes: ``test_missing_capability`` needs sampling (a client that did not declare it
gets -32021), ``test_streaming_elicitation`` streams a progress notification and then asks for input
inside its result (never as a separate request), ``test_logging_tool`` logs only at the level the
request's ``_meta`` asks for.

Input-required rounds:

Each tool asks the client for input by raising :class:`~server_demo.errors.InputRequired` (the
dispatcher answers with an ``InputRequiredResult``) and finishes once the retry carries the answers.
State that must survive between rounds travels in ``requestState``, sealed with the server's key
(``RequestContext.seal``), so a client cannot alter it unnoticed. Rules every fixture follows:

* a missing answer is asked for again (a new ``InputRequiredResult``, not an error);
* unknown extra answers are ignored;
* a malformed answer or an altered ``requestState`` is a -32602 error;
* only what the client declared it can answer is asked (``sampling``, ``elicitation``, ``roots``).
"""

from __future__ import annotations

from typing import Any

import mcp_types as mt

from .core import RequestContext, Server, ToolReturn
from .errors import InputRequired, RequestError

__all__ = ["register_modern_fixtures"]

_NO_ARGS: dict[str, Any] = {"type": "object", "properties": {}}


def _form(message: str, field: str, kind: str = "string") -> dict[str, Any]:
    return {
        "message": message,
        "requestedSchema": {"type": "object", "properties": {field: {"type": kind}}, "required": [field]},
    }


def _text(text: str) -> mt.CallToolResult:
    return mt.CallToolResult(content=[mt.TextContent(text=text)])


def _accepted(result: mt.ElicitResult, field: str) -> Any:
    """The value of ``field`` in an accepted elicitation, or -32602."""
    if result.action != "accept" or not result.content or field not in result.content:
        raise RequestError(-32602, f"the elicitation answer carries no {field!r}")
    return result.content[field]


def _sampled_text(result: mt.CreateMessageResult) -> str:
    content = result.content
    return content.text if isinstance(content, mt.TextContent) else str(content)


def register_modern_fixtures(server: Server) -> None:
    """Register the 2026-07-28 conformance fixtures on ``server``."""
    _register_probes(server)
    _register_input_required(server)


def _register_probes(server: Server) -> None:
    @server.tool(
        "test_missing_capability", description="Needs the client's sampling capability.", input_schema=_NO_ARGS
    )
    async def missing_capability(ctx: RequestContext, args: dict[str, Any]) -> ToolReturn:
        question = mt.SamplingMessage(role="user", content=mt.TextContent(text="Say hello"))
        result = await ctx.sample([question], max_tokens=20)  # -32021 without the capability
        return _text(_sampled_text(result))

    @server.tool(
        "test_streaming_elicitation",
        description="Streams progress, then asks the user inside its result.",
        input_schema=_NO_ARGS,
    )
    async def streaming_elicitation(ctx: RequestContext, args: dict[str, Any]) -> ToolReturn:
        answer = ctx.input_response("answer", mt.ElicitResult)
        if answer is None:
            await ctx.progress(0.5, 1.0, "about to ask")
            await ctx.log("info", "asking the user")
            raise InputRequired({"answer": ctx.input_request("elicitation/create", _form("Your answer?", "answer"))})
        return _text(f"You answered {_accepted(answer, 'answer')}")

    @server.tool(
        "test_param_headers",
        description="Mirrors its region argument into the Mcp-Param-Region header (SEP-2243).",
        input_schema={
            "type": "object",
            "properties": {"region": {"type": "string", "x-mcp-header": "Region", "description": "Where to run"}},
            "required": ["region"],
        },
    )
    async def param_headers(ctx: RequestContext, args: dict[str, Any]) -> ToolReturn:
        return _text(f"region: {args['region']}")

    @server.tool("test_logging_tool", description="Logs at every level it is allowed to.", input_schema=_NO_ARGS)
    async def logging_tool(ctx: RequestContext, args: dict[str, Any]) -> ToolReturn:
        for level in ("debug", "info", "warning", "error"):
            await ctx.log(level, f"a {level} message", "test_logging_tool")  # only at the level asked for
        return _text("logged")


def _register_input_required(server: Server) -> None:

    @server.tool(
        "test_input_required_result_elicitation",
        description="Asks for the user's name, then greets.",
        input_schema=_NO_ARGS,
    )
    async def elicitation(ctx: RequestContext, args: dict[str, Any]) -> ToolReturn:
        answer = ctx.input_response("user_name", mt.ElicitResult)
        if answer is None:
            raise InputRequired(
                {"user_name": ctx.input_request("elicitation/create", _form("What is your name?", "name"))}
            )
        return _text(f"Hello, {_accepted(answer, 'name')}!")

    @server.tool(
        "test_input_required_result_sampling", description="Asks the client's LLM a question.", input_schema=_NO_ARGS
    )
    async def sampling(ctx: RequestContext, args: dict[str, Any]) -> ToolReturn:
        answer = ctx.input_response("capital_question", mt.CreateMessageResult)
        if answer is None:
            question = mt.SamplingMessage(role="user", content=mt.TextContent(text="What is the capital of France?"))
            params = mt.CreateMessageRequestParams(messages=[question], max_tokens=100)
            request = ctx.input_request("sampling/createMessage", params.model_dump(by_alias=True, exclude_none=True))
            raise InputRequired({"capital_question": request})
        return _text(f"The model said: {_sampled_text(answer)}")

    @server.tool(
        "test_input_required_result_list_roots", description="Asks for the client's roots.", input_schema=_NO_ARGS
    )
    async def list_roots(ctx: RequestContext, args: dict[str, Any]) -> ToolReturn:
        answer = ctx.input_response("client_roots", mt.ListRootsResult)
        if answer is None:
            raise InputRequired({"client_roots": ctx.input_request("roots/list")})
        roots = ", ".join(str(root.uri) for root in answer.roots) or "(none)"
        return _text(f"The client's roots: {roots}")

    @server.tool(
        "test_input_required_result_request_state",
        description="Asks for a confirmation and checks the state it sealed.",
        input_schema=_NO_ARGS,
    )
    async def request_state(ctx: RequestContext, args: dict[str, Any]) -> ToolReturn:
        state = ctx.unseal()
        answer = ctx.input_response("confirm", mt.ElicitResult)
        if answer is None or state is None or state.get("tool") != "request_state":
            confirm = ctx.input_request("elicitation/create", _form("Please confirm", "ok", "boolean"))
            raise InputRequired({"confirm": confirm}, ctx.seal({"tool": "request_state"}))
        return _text(f"state-ok: confirmed={_accepted(answer, 'ok')}")

    @server.tool(
        "test_input_required_result_multiple_inputs",
        description="Asks for a name, a greeting and the roots in one round.",
        input_schema=_NO_ARGS,
    )
    async def multiple_inputs(ctx: RequestContext, args: dict[str, Any]) -> ToolReturn:
        state = ctx.unseal()
        name = ctx.input_response("user_name", mt.ElicitResult)
        greeting = ctx.input_response("greeting", mt.CreateMessageResult)
        roots = ctx.input_response("client_roots", mt.ListRootsResult)
        if name is None or greeting is None or roots is None or state is None:
            ask = mt.SamplingMessage(role="user", content=mt.TextContent(text="Generate a greeting"))
            sample = mt.CreateMessageRequestParams(messages=[ask], max_tokens=50)
            requests = {
                "user_name": ctx.input_request("elicitation/create", _form("What is your name?", "name")),
                "greeting": ctx.input_request(
                    "sampling/createMessage", sample.model_dump(by_alias=True, exclude_none=True)
                ),
                "client_roots": ctx.input_request("roots/list"),
            }
            raise InputRequired(requests, ctx.seal({"tool": "multiple_inputs"}))
        return _text(f"{_sampled_text(greeting)}, {_accepted(name, 'name')} ({len(roots.roots)} roots)")

    @server.tool(
        "test_input_required_result_multi_round",
        description="Asks for a name, then for a colour, then answers.",
        input_schema=_NO_ARGS,
    )
    async def multi_round(ctx: RequestContext, args: dict[str, Any]) -> ToolReturn:
        state = ctx.unseal() or {}
        if state.get("round") == 2:
            colour = ctx.input_response("step2", mt.ElicitResult)
            if colour is not None:
                return _text(f"{state['name']} likes {_accepted(colour, 'color')}")
        if state.get("round") == 1 and (name := ctx.input_response("step1", mt.ElicitResult)) is not None:
            step2 = ctx.input_request("elicitation/create", _form("Step 2: What is your favorite color?", "color"))
            raise InputRequired({"step2": step2}, ctx.seal({"round": 2, "name": _accepted(name, "name")}))
        if state.get("round") == 2:  # the colour is still missing: ask again, same state
            step2 = ctx.input_request("elicitation/create", _form("Step 2: What is your favorite color?", "color"))
            raise InputRequired({"step2": step2}, ctx.seal(state))
        step1 = ctx.input_request("elicitation/create", _form("Step 1: What is your name?", "name"))
        raise InputRequired({"step1": step1}, ctx.seal({"round": 1}))

    @server.tool(
        "test_input_required_result_tampered_state",
        description="Seals its requestState and refuses one that was altered.",
        input_schema=_NO_ARGS,
    )
    async def tampered_state(ctx: RequestContext, args: dict[str, Any]) -> ToolReturn:
        state = ctx.unseal()  # an altered state is a -32602 here
        answer = ctx.input_response("confirm", mt.ElicitResult)
        if state is None or answer is None:
            confirm = ctx.input_request("elicitation/create", _form("Please confirm", "ok", "boolean"))
            raise InputRequired({"confirm": confirm}, ctx.seal({"tool": "tampered_state", "nonce": 1}))
        return _text("state intact")

    @server.tool(
        "test_input_required_result_capabilities",
        description="Asks only for what the client declared it can answer.",
        input_schema=_NO_ARGS,
    )
    async def capabilities(ctx: RequestContext, args: dict[str, Any]) -> ToolReturn:
        caps = ctx.client_capabilities
        requests: dict[str, mt.InputRequest] = {}
        if caps.sampling is not None and ctx.input_response("summary", mt.CreateMessageResult) is None:
            ask = mt.SamplingMessage(role="user", content=mt.TextContent(text="Summarize the day"))
            sample = mt.CreateMessageRequestParams(messages=[ask], max_tokens=50)
            requests["summary"] = ctx.input_request(
                "sampling/createMessage", sample.model_dump(by_alias=True, exclude_none=True)
            )
        if caps.elicitation is not None and ctx.input_response("mood", mt.ElicitResult) is None:
            requests["mood"] = ctx.input_request("elicitation/create", _form("How are you?", "mood"))
        if caps.roots is not None and ctx.input_response("roots", mt.ListRootsResult) is None:
            requests["roots"] = ctx.input_request("roots/list")
        if requests:
            raise InputRequired(requests)
        return _text("nothing left to ask")

    @server.prompt(
        "test_input_required_result_prompt",
        description="A prompt that asks the user for its context first.",
    )
    async def prompt(ctx: RequestContext, args: dict[str, str]) -> list[mt.PromptMessage]:
        answer = ctx.input_response("user_context", mt.ElicitResult)
        if answer is None:
            context = ctx.input_request("elicitation/create", _form("What context should the prompt use?", "context"))
            raise InputRequired({"user_context": context})
        text = f"Use this context: {_accepted(answer, 'context')}"
        return [mt.PromptMessage(role="user", content=mt.TextContent(text=text))]
