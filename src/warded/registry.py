"""The tools registered on a gate: registration (from a function's signature or a
JSON Schema), removal, and the output scanners told the registered tools' names.

The registry is a dict swapped whole on every change, so a listing or a call in
progress never sees it change under it."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar, cast, overload

from warded.errors import WardedError
from warded.scanners.base import Scanner
from warded.tools import (
    ResourceRule,
    Tool,
    describe,
    make_tool,
    schema_from_signature,
    typed_arguments,
)

F = TypeVar("F", bound=Callable[..., Any])


def _for_tools(scanner: Scanner, names: tuple[str, ...]) -> Scanner:
    """`scanner.for_tools(names)` if the scanner has that method, else the scanner."""
    for_tools = getattr(scanner, "for_tools", None)
    return scanner if for_tools is None else cast(Scanner, for_tools(names))


class ToolRegistry:
    """The registration half of `Gate`: `tool`, `register`, `unregister`.

    A base class, so that these stay methods of the gate (the decorator's overloads
    included); `Gate.__init__` sets the attributes declared here."""

    _tools: dict[str, Tool]
    output_scanners: tuple[Scanner, ...]
    _told: tuple[object, object, tuple[Scanner, ...]] | None  # _tool_scanners

    @overload
    def tool(self, fn: F) -> F: ...

    @overload
    def tool(
        self,
        fn: None = None,
        *,
        name: str | None = None,
        description: str | None = None,
        effect: str = "read",
        resource: ResourceRule | None = None,
        sensitive: Sequence[str] = (),
        labels: Sequence[str] = (),
        atomic: bool = False,
        opaque: bool = False,
    ) -> Callable[[F], F]: ...

    def tool(
        self,
        fn: F | None = None,
        *,
        name: str | None = None,
        description: str | None = None,
        effect: str = "read",
        resource: ResourceRule | None = None,
        sensitive: Sequence[str] = (),
        labels: Sequence[str] = (),
        atomic: bool = False,
        opaque: bool = False,
    ) -> F | Callable[[F], F]:
        """Register a function as a tool; its argument schema comes from its type hints.

        Parameters typed as pydantic models, enums, dates and the like receive
        instances validated from the checked arguments.
        """

        def register(f: F) -> F:
            self._add(
                make_tool(
                    name or f.__name__,
                    schema_from_signature(f),
                    f,
                    description=describe(f) if description is None else description,
                    effect=effect,
                    resource=resource,
                    sensitive=tuple(sensitive),
                    labels=tuple(labels),
                    atomic=atomic,
                    opaque=opaque,
                    convert=typed_arguments(f),
                )
            )
            return f

        return register(fn) if fn is not None else register

    def register(
        self,
        name: str,
        parameters: Mapping[str, Any],
        executor: Callable[..., Any],
        *,
        description: str = "",
        effect: str = "read",
        resource: ResourceRule | None = None,
        sensitive: Sequence[str] = (),
        labels: Sequence[str] = (),
        atomic: bool = False,
        opaque: bool = False,
        convert: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> Tool:
        """Register a tool described by a name and a JSON Schema, run by `executor(**args)`.

        `labels` are added to the calling session each time the tool runs.
        `atomic=True` declares that nothing happened when the tool raised, so
        its budget reservations are given back (by default they are kept).
        `opaque=True` declares a result the gate cannot view (`warded.outputs`):
        it is never scanned or masked, and labels the session `untrusted`.
        `convert` turns the checked arguments into the executor's keyword arguments
        before the decision; an ArgumentError it raises makes the call invalid.
        """
        return self._add(
            make_tool(
                name,
                parameters,
                executor,
                description=description,
                effect=effect,
                resource=resource,
                sensitive=tuple(sensitive),
                labels=tuple(labels),
                atomic=atomic,
                opaque=opaque,
                convert=convert,
            )
        )

    def _add(self, tool: Tool) -> Tool:
        if tool.name in self._tools:
            raise WardedError(f"tool {tool.name!r} is already registered")
        self._tools = {**self._tools, tool.name: tool}
        return tool

    def unregister(self, name: str) -> None:
        """Remove a tool: from now on it is unknown to listings and calls.

        Calls already authorized finish. The registry is swapped whole, so a
        listing in progress never sees it change under it.
        """
        self._tools = {n: t for n, t in self._tools.items() if n != name}

    def _tool_scanners(self) -> tuple[Scanner, ...]:
        """The output scanners, each told the names of the tools registered on this gate.

        A scanner with a `for_tools(names)` method is replaced by what that returns
        (the injection scanner reads a tool's name, or an order to do what a tool
        does, written in data); the others are used as they are. The registered
        tools, not those the caller may see: the registry is the same for every
        caller, and a tool hidden from a session (say, once it is untrusted) is
        still one that injected text may try to reach. Built again only when the
        registry (swapped whole on every change) or the output scanners change.
        """
        registry, scanners = self._tools, self.output_scanners
        told = self._told
        if told is not None and told[0] is registry and told[1] is scanners:
            return told[2]
        names = tuple(registry)
        made = tuple(_for_tools(s, names) for s in scanners)
        self._told = (registry, scanners, made)
        return made
