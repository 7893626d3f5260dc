"""Plain Python functions as tools a model can call.

A function's name, docstring and type hints are its contract with the model: the first docstring
paragraph becomes the description, Google-style ``Args:`` entries describe the parameters and the
type hints become a JSON schema. Arguments the model sends are foreign JSON, so they are validated
(with pydantic, at this edge only) before the function runs.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeAlias, get_type_hints, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model
from pydantic_core import to_jsonable_python

from threadline.exceptions import ToolArgumentsError, UsageError
from threadline.types.contents import JSONValue

__all__ = [
    "ApprovalMode",
    "FunctionTool",
    "ToolSource",
    "as_tool",
    "check_approval_mode",
    "check_tool_name",
    "tool",
]

ApprovalMode: TypeAlias = (
    "Literal['always_require', 'never_require'] | Callable[[Mapping[str, Any]], bool]"
)
"""Whether a call needs a person's approval before it runs: always, never, or when a predicate
on the call's arguments says so."""

_MODES = ("always_require", "never_require")


def check_approval_mode(mode: object, where: str) -> ApprovalMode:
    """``mode`` if it is an :data:`ApprovalMode`; else ``UsageError`` naming ``where``."""
    if mode in _MODES or (callable(mode) and not isinstance(mode, str)):
        return mode  # pyright: ignore[reportReturnType]
    raise UsageError(
        f"approval_mode of {where} must be 'always_require', 'never_require' or a function of "
        f"the arguments returning True when approval is needed, got {mode!r}"
    )


_ARGS_HEADER = re.compile(r"^\s*(Args|Arguments|Parameters):\s*$")
_ARG_LINE = re.compile(r"^\s+(\*{0,2}\w+)\s*(\([^)]*\))?:\s*(.*)$")


def _parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """Split a Google-style docstring into its description and per-argument descriptions."""
    if not doc:
        return "", {}
    doc = inspect.cleandoc(doc)
    lines = doc.splitlines()
    description: list[str] = []
    args: dict[str, str] = {}
    in_args = False
    current: str | None = None
    for line in lines:
        if _ARGS_HEADER.match(line):
            in_args = True
            continue
        if in_args:
            if line and not line[0].isspace():  # next section (Returns:, Raises:, ...)
                in_args = False
                current = None
                continue
            m = _ARG_LINE.match(line)
            if m and (current is None or len(line) - len(line.lstrip()) <= 4):
                name = str(m.group(1)).lstrip("*")
                args[name] = str(m.group(3)).strip()
                current = name
            elif current and line.strip():
                args[current] = f"{args[current]} {line.strip()}".strip()
            continue
        if not args:
            description.append(line)
    text = "\n".join(description).strip()
    first_paragraph = text.split("\n\n", 1)[0].replace("\n", " ").strip()
    return first_paragraph, args


def _strip_titles(schema: Any) -> Any:
    """Drop pydantic's auto-generated ``title`` keys: noise in every prompt that carries tools."""
    if isinstance(schema, dict):
        return {
            k: _strip_titles(v)
            for k, v in schema.items()  # pyright: ignore[reportUnknownVariableType]
            if k != "title" or not isinstance(v, str)
        }
    if isinstance(schema, list):
        return [_strip_titles(v) for v in schema]  # pyright: ignore[reportUnknownVariableType]
    return schema


_TOOL_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


def check_tool_name(name: object) -> str:
    """``name`` if every chat API accepts it as a tool name; else ``UsageError`` naming it."""
    if not isinstance(name, str) or not _TOOL_NAME.fullmatch(name):
        raise UsageError(
            f"tool name {name!r} is not usable: give 1-64 letters, digits, '_' or '-' "
            "via tool(name=...)"
        )
    return name


@dataclass(frozen=True, slots=True, kw_only=True)
class FunctionTool:
    """A tool: what the model is told about it, and the function that runs it.

    A tool made without a function (``FunctionTool(name=..., description=..., parameters=...)``)
    is *deferred*: the model is offered it, but the caller runs it. A run whose model calls one
    stops with the call in ``AgentRunResponse.pending_calls``; the caller passes the result as the
    next run's input (a ``Role.TOOL`` message of ``FunctionResultContent``). This is how a server
    returns calls to tools its client declared, and how a handoff hands a conversation on.
    """

    name: str
    description: str = ""
    parameters: Mapping[str, Any] = field(
        default_factory=lambda: {"type": "object", "properties": {}}
    )
    """The JSON schema of the arguments object."""
    func: Callable[..., Any] | None = field(default=None, repr=False)
    """Runs the tool; ``None`` for a deferred tool that the caller runs."""
    arguments_model: type[BaseModel] | None = field(default=None, repr=False)
    """Validates the model's arguments before ``func`` runs; ``None`` passes them unchecked."""
    approval_mode: ApprovalMode = "never_require"
    """``"always_require"``: a run that reaches a call stops, and the call runs only once a person
    approves it (see ``AgentRunResponse.user_input_requests``); a predicate decides per call."""

    def __post_init__(self) -> None:
        check_tool_name(self.name)
        check_approval_mode(self.approval_mode, f"tool {self.name!r}")
        if not isinstance(self.parameters, Mapping):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise UsageError(
                f"parameters of tool {self.name!r} must be a JSON schema object (a dict), "
                f"got {self.parameters!r}"
            )
        if self.func is not None and not callable(self.func):
            raise UsageError(f"func of tool {self.name!r} must be callable, got {self.func!r}")

    @property
    def is_deferred(self) -> bool:
        """True for a tool without a function: the caller runs it, not the agent."""
        return self.func is None

    def needs_approval(self, arguments: Mapping[str, Any]) -> bool:
        """Whether a call with ``arguments`` waits for a person's approval.

        A predicate that raises counts as needing approval: when in doubt, ask.
        """
        mode = self.approval_mode
        if mode == "never_require":
            return False
        if mode == "always_require":
            return True
        try:
            return bool(mode(arguments))
        except Exception:
            return True

    @classmethod
    def from_function(
        cls,
        func: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        approval_mode: ApprovalMode = "never_require",
    ) -> FunctionTool:
        """Describe ``func`` from its signature, type hints and docstring."""
        if not callable(func):
            raise UsageError(f"a tool must be a function or a FunctionTool, got {func!r}")
        tool_name = check_tool_name(name or getattr(func, "__name__", None))
        summary, arg_docs = _parse_docstring(inspect.getdoc(func))
        try:
            hints = get_type_hints(func, include_extras=True)
        except Exception as exc:
            raise UsageError(f"cannot resolve the type hints of tool {tool_name!r}: {exc}") from exc
        fields: dict[str, Any] = {}
        for param in inspect.signature(func).parameters.values():
            if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
                continue
            annotation = hints.get(param.name, Any)
            default = ... if param.default is param.empty else param.default
            doc = arg_docs.get(param.name)
            # Only set a description the docstring gives: None would mask one from Annotated.
            info = Field(default=default, description=doc) if doc else Field(default=default)
            fields[param.name] = (annotation, info)
        model = create_model(
            f"{tool_name}_arguments",
            __config__=ConfigDict(extra="forbid"),
            **fields,
        )
        schema = _strip_titles(model.model_json_schema())
        schema.setdefault("properties", {})
        return cls(
            name=tool_name,
            description=description if description is not None else summary,
            parameters=schema,
            func=func,
            arguments_model=model,
            approval_mode=approval_mode,
        )

    async def invoke(self, arguments: Mapping[str, Any]) -> JSONValue:
        """Validate the model's arguments, run the function, and return a JSON-able result.

        Synchronous functions run in a worker thread so a slow tool never blocks the event loop.

        Raises:
            ToolArgumentsError: the arguments do not fit the parameters.
            UsageError: the tool is deferred: it has no function to run.
        """
        func = self.func
        if func is None:
            raise UsageError(
                f"tool {self.name!r} is deferred (it has no function): the caller runs it and "
                "submits the result as a Role.TOOL message; give it func=... to run it here"
            )
        kwargs: dict[str, Any] = dict(arguments)
        if self.arguments_model is not None:
            try:
                parsed = self.arguments_model.model_validate(kwargs)
            except ValidationError as exc:
                problems = "; ".join(
                    f"{'.'.join(str(p) for p in e['loc']) or '(arguments)'}: {e['msg']}"
                    for e in exc.errors()
                )
                raise ToolArgumentsError(
                    f"invalid arguments for tool {self.name!r}: {problems}"
                ) from exc
            kwargs = {name: getattr(parsed, name) for name in type(parsed).model_fields}
        if inspect.iscoroutinefunction(func):
            result = await func(**kwargs)
        else:
            result = await asyncio.to_thread(func, **kwargs)
            if inspect.isawaitable(result):
                result = await result
        return to_jsonable_python(result, fallback=str)


@runtime_checkable
class ToolSource(Protocol):
    """Tools that are known only at run time: the tools of an MCP server, say.

    Given to ``ChatAgent(tools=[...])`` or to one run beside plain tools; the agent asks for the
    current tools at the start of every run (a source caches them and connects on first use).
    Sources that hold a connection also implement ``aclose()`` (see :mod:`threadline.closing`).
    """

    @property
    def name(self) -> str:
        """Names the source in errors (not a tool name)."""
        ...

    async def get_tools(self) -> Sequence[FunctionTool]:
        """The tools to offer the model now."""
        ...


@functools.lru_cache(maxsize=512)
def _described(func: Callable[..., Any]) -> FunctionTool:
    return FunctionTool.from_function(func)


def as_tool(obj: FunctionTool | Callable[..., Any]) -> FunctionTool:
    """Return ``obj`` as a :class:`FunctionTool`, describing plain functions on the way.

    Descriptions are cached per function: context providers may hand the same function to every
    model call, and building its schema each time would cost more than the call's bookkeeping.
    """
    if isinstance(obj, FunctionTool):
        return obj
    try:
        return _described(obj)
    except TypeError as exc:
        if "unhashable" not in str(exc):
            raise
        return FunctionTool.from_function(obj)


def tool(
    func: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    description: str | None = None,
    approval_mode: ApprovalMode = "never_require",
) -> Any:
    """Decorator form of :meth:`FunctionTool.from_function`, to rename or re-describe a tool.

    Use bare (``@tool``) or with options (``@tool(name="lookup")``,
    ``@tool(approval_mode="always_require")``).
    """
    if func is not None:
        return FunctionTool.from_function(
            func, name=name, description=description, approval_mode=approval_mode
        )

    def decorate(f: Callable[..., Any]) -> FunctionTool:
        return FunctionTool.from_function(
            f, name=name, description=description, approval_mode=approval_mode
        )

    return decorate
