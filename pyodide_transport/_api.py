"""The typed MCP methods of :class:`~pyodide_transport.client.Client`: thin wrappers over ``request``.

Kept apart from the session shell so that ``client.py`` holds only the session's mechanics; every
method here is one ``request`` (or a page loop of them) and a result model.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, Final, TypeAlias, TypeVar, overload

from mcp_types import (
    CallToolResult,
    CompleteResult,
    DiscoverResult,
    EmptyResult,
    GetPromptResult,
    ListPromptsResult,
    ListResourcesResult,
    ListResourceTemplatesResult,
    ListToolsResult,
    Prompt,
    PromptReference,
    ReadResourceResult,
    Resource,
    ResourceTemplate,
    ResourceTemplateReference,
    Tool,
    ToolAnnotations,
)
from pydantic import BaseModel

from .errors import RemoteProtocolError
from .session import Era, dump
from .wire import tool_header_problem

__all__ = ["UNSET", "MCPMethods", "Params", "ProgressCallback", "Timeout", "Unset"]

_MAX_PAGES: Final = 10_000
"""Cap on pages followed by one ``list_*`` call: a server that loops its cursors cannot hang us."""

ResultT = TypeVar("ResultT", bound=BaseModel)
_PageT = TypeVar("_PageT", ListToolsResult, ListResourcesResult, ListResourceTemplatesResult, ListPromptsResult)
Params: TypeAlias = Mapping[str, Any] | BaseModel | None


class Unset:
    """Marker type for "use the client's default"."""

    def __repr__(self) -> str:
        return "<default>"


UNSET: Final = Unset()
Timeout: TypeAlias = float | Unset | None

ProgressCallback: TypeAlias = Callable[[float, float | None, str | None], Awaitable[None] | None]
"""Called as ``callback(progress, total, message)`` for each progress notification of one request."""


def params_dict(params: Params) -> dict[str, Any]:
    """Params given as a dict or a model, as a plain dict."""
    if params is None:
        return {}
    if isinstance(params, BaseModel):
        return dump(params)
    return dict(params)


class MCPMethods:
    """One typed method per MCP request; subclasses provide ``request`` and ``era``."""

    _tool_hints: dict[str, ToolAnnotations | None]
    """The annotations of the tools last listed, by name (the subclass makes the dict)."""

    @property
    def era(self) -> Era | None:
        """``"modern"`` or ``"handshake"`` once connected."""
        raise NotImplementedError

    @overload
    async def request(
        self,
        method: str,
        params: Params = None,
        result_type: None = None,
        *,
        progress: ProgressCallback | None = None,
        timeout: Timeout = UNSET,  # noqa: ASYNC109 (per-request timeout that progress resets)
        max_total_timeout: Timeout = UNSET,
    ) -> dict[str, Any]: ...

    @overload
    async def request(
        self,
        method: str,
        params: Params,
        result_type: type[ResultT],
        *,
        progress: ProgressCallback | None = None,
        timeout: Timeout = UNSET,  # noqa: ASYNC109 (per-request timeout that progress resets)
        max_total_timeout: Timeout = UNSET,
    ) -> ResultT: ...

    async def request(
        self,
        method: str,
        params: Params = None,
        result_type: type[ResultT] | None = None,
        *,
        progress: ProgressCallback | None = None,
        timeout: Timeout = UNSET,  # noqa: ASYNC109 (per-request timeout that progress resets)
        max_total_timeout: Timeout = UNSET,
    ) -> ResultT | dict[str, Any]:
        """Send any request and wait for its result.

        Input-required results (modern era) are answered through the sampling/elicitation/roots
        handlers and the request is re-issued until it completes.

        Args:
            method: The JSON-RPC method.
            params: Params as a dict or a model (``_meta`` entries are kept).
            result_type: Model to parse the result into; ``None`` returns the raw dict.
            progress: Called for each progress notification of this request.
            timeout: Seconds without response or progress before giving up (default: the
                client's ``request_timeout``).
            max_total_timeout: Upper bound in seconds regardless of progress (default: the
                client's ``max_total_timeout``).

        Raises:
            MCPError: The server answered with a JSON-RPC error.
            RequestTimeoutError: The request timed out (the server was told to cancel it).
            ConnectionClosedError: The connection closed before the response.
            RemoteProtocolError: The result does not match ``result_type``.
        """
        return await self._request(
            method, params, result_type, progress=progress, timeout=timeout, max_total_timeout=max_total_timeout
        )

    async def _request(
        self,
        method: str,
        params: Params,
        result_type: type[ResultT] | None,
        *,
        progress: ProgressCallback | None,
        timeout: Timeout,  # noqa: ASYNC109 (per-request timeout that progress resets)
        max_total_timeout: Timeout,
    ) -> ResultT | dict[str, Any]:
        """What :meth:`request` does; the session shell implements it."""
        raise NotImplementedError

    async def ping(self) -> None:
        """Check that the server is alive.

        The modern era removed ``ping``; there a ``server/discover`` serves as the liveness check.
        """
        if self.era == "modern":
            await self.request("server/discover", None, DiscoverResult)
        else:
            await self.request("ping", None, EmptyResult)

    async def list_tools(self, cursor: str | None = None, *, paginate: bool = True) -> ListToolsResult:
        """List the server's tools, following ``nextCursor`` to the end unless ``paginate=False``."""
        return await self._list("tools/list", ListToolsResult, "tools", cursor, paginate)

    async def list_resources(self, cursor: str | None = None, *, paginate: bool = True) -> ListResourcesResult:
        """List the server's resources, following ``nextCursor`` unless ``paginate=False``."""
        return await self._list("resources/list", ListResourcesResult, "resources", cursor, paginate)

    async def list_resource_templates(
        self, cursor: str | None = None, *, paginate: bool = True
    ) -> ListResourceTemplatesResult:
        """List the server's resource templates, following ``nextCursor`` unless ``paginate=False``."""
        return await self._list(
            "resources/templates/list", ListResourceTemplatesResult, "resource_templates", cursor, paginate
        )

    async def list_prompts(self, cursor: str | None = None, *, paginate: bool = True) -> ListPromptsResult:
        """List the server's prompts, following ``nextCursor`` unless ``paginate=False``."""
        return await self._list("prompts/list", ListPromptsResult, "prompts", cursor, paginate)

    async def iter_tools(self) -> AsyncIterator[Tool]:
        """Yield the server's tools, fetching one page at a time."""
        async for page in self._pages("tools/list", ListToolsResult):
            for tool in page.tools:
                yield tool

    async def iter_resources(self) -> AsyncIterator[Resource]:
        """Yield the server's resources, fetching one page at a time."""
        async for page in self._pages("resources/list", ListResourcesResult):
            for resource in page.resources:
                yield resource

    async def iter_resource_templates(self) -> AsyncIterator[ResourceTemplate]:
        """Yield the server's resource templates, fetching one page at a time."""
        async for page in self._pages("resources/templates/list", ListResourceTemplatesResult):
            for template in page.resource_templates:
                yield template

    async def iter_prompts(self) -> AsyncIterator[Prompt]:
        """Yield the server's prompts, fetching one page at a time."""
        async for page in self._pages("prompts/list", ListPromptsResult):
            for prompt in page.prompts:
                yield prompt

    async def _pages(self, method: str, page_type: type[_PageT], cursor: str | None = None) -> AsyncIterator[_PageT]:
        seen: set[str] = set()
        while True:
            page = await self.request(method, {"cursor": cursor} if cursor is not None else None, page_type)
            yield self._usable(page)
            cursor = page.next_cursor
            if cursor is None:
                return
            if cursor in seen or len(seen) >= _MAX_PAGES:
                raise RemoteProtocolError(f"{method}: server repeats cursor {cursor!r} (pagination loop)")
            seen.add(cursor)

    async def _list(
        self, method: str, page_type: type[_PageT], field: str, cursor: str | None, paginate: bool
    ) -> _PageT:
        if not paginate:
            page = await self.request(method, {"cursor": cursor} if cursor is not None else None, page_type)
            return self._usable(page)
        items: list[Any] = []
        last: _PageT | None = None
        async for page in self._pages(method, page_type, cursor):
            items.extend(getattr(page, field))
            last = page
        assert last is not None
        return last.model_copy(update={field: items, "next_cursor": None})

    def _usable(self, page: _PageT) -> _PageT:
        """A ``tools/list`` page without the tools a client must not use: invalid ``x-mcp-header`` (SEP-2243)."""
        if not isinstance(page, ListToolsResult):
            return page
        kept = []
        for tool in page.tools:
            problem = tool_header_problem(tool.input_schema)
            if problem is None:
                kept.append(tool)
                self._tool_hints[tool.name] = tool.annotations  # which tools are safe to call again
            else:
                self._report(RemoteProtocolError(f"tool {tool.name!r} left out: {problem}"))
        return page if len(kept) == len(page.tools) else page.model_copy(update={"tools": kept})

    def _report(self, exc: Exception) -> None:
        """Tell the user about a problem that belongs to no request (the session shell reports it)."""

    async def call_tool(
        self,
        name: str,
        arguments: Mapping[str, Any] | None = None,
        *,
        progress: ProgressCallback | None = None,
        timeout: Timeout = UNSET,  # noqa: ASYNC109 (per-request timeout that progress resets)
        max_total_timeout: Timeout = UNSET,
    ) -> CallToolResult:
        """Call a tool. A tool's own failure comes back as ``result.is_error``, not as an exception.

        Args:
            name: The tool name.
            arguments: The tool arguments.
            progress: Called as ``progress(progress, total, message)`` while the tool runs.
            timeout: Seconds without response or progress (default: the client's).
            max_total_timeout: Upper bound in seconds regardless of progress (default: the client's).
        """
        params: dict[str, Any] = {"name": name}
        if arguments is not None:
            params["arguments"] = dict(arguments)
        return await self.request(
            "tools/call",
            params,
            CallToolResult,
            progress=progress,
            timeout=timeout,
            max_total_timeout=max_total_timeout,
        )

    async def read_resource(self, uri: str) -> ReadResourceResult:
        """Read one resource."""
        return await self.request("resources/read", {"uri": uri}, ReadResourceResult)

    async def get_prompt(self, name: str, arguments: Mapping[str, str] | None = None) -> GetPromptResult:
        """Get a prompt, filled in with ``arguments``."""
        params: dict[str, Any] = {"name": name}
        if arguments is not None:
            params["arguments"] = dict(arguments)
        return await self.request("prompts/get", params, GetPromptResult)

    async def complete(
        self,
        ref: PromptReference | ResourceTemplateReference | Mapping[str, Any],
        argument_name: str,
        value: str,
        context_arguments: Mapping[str, str] | None = None,
    ) -> CompleteResult:
        """Ask for completions of one argument of a prompt or resource template."""
        params: dict[str, Any] = {"ref": params_dict(ref), "argument": {"name": argument_name, "value": value}}
        if context_arguments is not None:
            params["context"] = {"arguments": dict(context_arguments)}
        return await self.request("completion/complete", params, CompleteResult)
