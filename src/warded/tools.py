"""Tools: registered callables or executors described by a JSON Schema.

A tool's argument schema is derived from its type hints with pydantic (or
given directly, as MCP servers describe theirs). Arguments are validated
against that schema with `jsonschema_rs`, strictly: a string is never coerced
into a number; `jsonschema` only words the error of a call already refused
(and validates when `jsonschema_rs` cannot build a validator for a schema).
Parameters with defaults are filled in before the arguments are frozen, so
the policy sees exactly the values the tool will receive. A function whose
parameters are pydantic models, enums, dates or other rich types receives
instances validated (by pydantic) from exactly the frozen values the policy
saw. One rule for every kind of tool: the gate fills the defaults of the
top-level properties (the policy sees them), and a property left out whose
default something else would fill, a default other than None anywhere below the
top level or under a `$ref`, `anyOf`, `oneOf`, `allOf` or `if` (which an MCP
upstream or pydantic fills after the decision, choosing the branch by its own
rules), is `invalid_arguments` naming it, since the policy never saw it: the
caller sends it, so what is decided is what runs, whatever fills defaults.
"""

from __future__ import annotations

import copy
import functools
import inspect
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, get_type_hints

import jsonschema
import jsonschema_rs
import pydantic
import referencing
import referencing.exceptions
import referencing.jsonschema

from warded.errors import ArgumentError, ToolDefinitionError
from warded.model import ToolSpec
from warded.outputs import MAX_DEPTH  # a result may nest as deep as its arguments
from warded.policy import values

if TYPE_CHECKING:
    from referencing._core import Resolver

    Schemas = list[tuple[Any, Resolver[Any]]]  # subschemas, each with what resolves its references

Effect = Literal["read", "write", "irreversible", "external"]
EFFECTS: tuple[Effect, ...] = ("read", "write", "irreversible", "external")
ResourceRule = Callable[[Mapping[str, Any]], tuple[str, str]]
NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True, slots=True, eq=False)
class Tool:
    """One registered tool."""

    name: str
    description: str
    parameters: Mapping[str, Any]
    effect: Effect
    executor: Callable[..., Any]
    validator: jsonschema.protocols.Validator = field(repr=False)
    is_async: bool
    fast: Any = field(default=None, repr=False)  # a jsonschema_rs validator, when it builds
    resource: ResourceRule | None = None
    sensitive: frozenset[str] = frozenset()
    labels: frozenset[str] = frozenset()
    atomic: bool = False
    opaque: bool = False  # returns data with no JSON view: never scanned, labels "untrusted"
    convert: Callable[[dict[str, Any]], dict[str, Any]] | None = field(default=None, repr=False)
    to_cedar: Callable[[Any], Any] = field(init=False, repr=False)  # the arguments' Cedar form

    defaults: tuple[tuple[str, Any], ...] = field(init=False, repr=False)
    # the schema's root, to follow its references, if it has defaults the gate does not fill
    unfilled: Resolver[Any] | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # `values.to_cedar` for this tool's schema, and its parameters' defaults, read once
        object.__setattr__(self, "to_cedar", values.converter(self.parameters))
        props = self.parameters.get("properties", {})
        defaults = tuple(
            (k, p["default"]) for k, p in props.items() if isinstance(p, Mapping) and "default" in p
        )
        object.__setattr__(self, "defaults", defaults)
        resolver = None
        if _other_defaults(self.parameters):
            root = referencing.Resource.from_contents(
                self.parameters, default_specification=referencing.jsonschema.DRAFT202012
            )
            resolver = referencing.Registry().resolver_with_root(root)
        object.__setattr__(self, "unfilled", resolver)

    def spec(self) -> ToolSpec:
        """The tool as listed; its schema is a copy, so no caller can change what validates."""
        return ToolSpec(self.name, self.description, copy.deepcopy(self.parameters), self.effect)

    def prepare(self, args: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of `args` with defaults filled in; ArgumentError if not an object or
        nested too deep (`too_deep`)."""
        plain = type(args) is dict and all(type(k) is str for k in args)
        if not plain and (
            not isinstance(args, Mapping) or not all(isinstance(k, str) for k in args)
        ):
            raise ArgumentError("arguments must be an object with string keys")
        out = dict(args)
        for key, default in self.defaults:
            if key not in out:
                out[key] = copy.deepcopy(default)
        too_deep(out)  # before the first step that walks it
        return out

    def check(self, value: Any) -> str | None:
        """None if `value` is valid, else where and which constraint failed (never the value),
        or which property it leaves out that would be filled with a default the policy
        never saw."""
        if self.fast is not None and self.fast.is_valid(value):
            return self._unseen(value)
        error = jsonschema.exceptions.best_match(self.validator.iter_errors(value))
        if error is None:
            # jsonschema_rs refused what jsonschema lets through (e.g. a `pattern`,
            # which JSON Schema defines as ECMA 262, not Python's `re`)
            return self._unseen(value) if self.fast is None else "(arguments): violates the schema"
        path = "/".join(str(p) for p in error.absolute_path) or "(arguments)"
        return f"{path}: violates {error.validator!r}"

    def _unseen(self, value: Any) -> str | None:
        if self.unfilled is None:
            return None
        path = _unseen_default([(self.parameters, self.unfilled)], value)
        return None if path is None else f"{'/'.join(path)}: missing (its default is not sent)"

    def arguments(self, value: dict[str, Any]) -> dict[str, Any]:
        """The keyword arguments the executor receives for the (valid, thawed) `value`;
        ArgumentError if the function's own parameter types refuse it."""
        return value if self.convert is None else self.convert(value)


def too_deep(value: Mapping[str, Any]) -> None:
    """ArgumentError naming where arguments nest objects or arrays deeper than
    `MAX_DEPTH` (every later step walks them; the limit keeps each in bounds)."""
    level: list[Any] = [value]
    for _ in range(MAX_DEPTH):
        level = [
            item
            for v in level
            for item in (v.values() if isinstance(v, Mapping) else v)
            if type(item) not in _LEAVES and isinstance(item, _NESTS)
        ]
        if not level:
            return
    raise ArgumentError(f"arguments nested deeper than {MAX_DEPTH} levels at {_deep(value)}/…")


_NESTS = (dict, list, tuple, Mapping)  # what canonical JSON writes as an object or array
_LEAVES = frozenset({str, int, float, bool, type(None)})


def _deep(value: Mapping[str, Any]) -> str:
    """The first keys of the way down to a value `MAX_DEPTH` levels deep in `value`
    (walked again with each parent's place: only a refused call pays for that)."""
    levels: list[list[tuple[Any, int, str]]] = [[(value, 0, "")]]
    for _ in range(MAX_DEPTH):
        levels.append(
            [
                (item, parent, str(key))
                for parent, (v, _p, _k) in enumerate(levels[-1])
                for key, item in (v.items() if isinstance(v, Mapping) else enumerate(v))
                if isinstance(item, _NESTS)
            ]
        )
    keys: list[str] = []
    at = 0
    for level in reversed(levels[1:]):
        _v, at, key = level[at]
        keys.append(key)
    return "/".join(reversed(keys[-8:]))


_SAME = ("allOf", "anyOf", "oneOf")  # keywords whose subschemas apply to the instance itself
_SAME_ONE = ("if", "then", "else")  # `not` is left out: nothing is filled from under it


def _other_defaults(parameters: Mapping[str, Any]) -> bool:
    """Whether the schema may hold a default other than None the gate does not fill (it
    fills a top-level property's own, unless a reference may lead there again), read
    broadly: any `default` and `$ref` key counts."""
    props = parameters.get("properties")
    filled = (
        {id(p) for p in props.values() if isinstance(p, Mapping)}
        if isinstance(props, Mapping)
        else set()
    )
    found: set[str] = set()
    stack: list[Any] = [parameters]
    while stack:
        node = stack.pop()
        if isinstance(node, Mapping):
            if node.get("default") is not None:
                found.add("filled" if id(node) in filled else "other")
            if "$ref" in node or "$dynamicRef" in node:
                found.add("ref")
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return "other" in found or found == {"filled", "ref"}


def _applying(schema: Any, resolver: Resolver[Any], out: Schemas, seen: set[int]) -> None:
    """Add `schema` and every subschema that applies to the same instance to `out`."""
    if not isinstance(schema, Mapping) or id(schema) in seen:
        return
    seen.add(id(schema))
    if "$id" in schema:
        resolver = resolver.in_subresource(
            referencing.Resource.from_contents(
                schema, default_specification=referencing.jsonschema.DRAFT202012
            )
        )
    out.append((schema, resolver))
    for key in ("$ref", "$dynamicRef"):
        ref = schema.get(key)
        if isinstance(ref, str):
            try:
                resolved = resolver.lookup(ref)
            except referencing.exceptions.Unresolvable:
                continue  # nor does the gate validate what is behind it: a value there is refused
            _applying(resolved.contents, resolved.resolver, out, seen)
    subs = [s for k in _SAME if isinstance(schema.get(k), list) for s in schema[k]]
    subs += [schema.get(k) for k in _SAME_ONE]
    dependent = schema.get("dependentSchemas")
    subs += list(dependent.values()) if isinstance(dependent, Mapping) else []
    for sub in subs:
        _applying(sub, resolver, out, seen)


def _closure(schemas: Schemas) -> Schemas:
    out: Schemas = []
    seen: set[int] = set()
    for schema, resolver in schemas:
        _applying(schema, resolver, out, seen)
    return out


def _matches(pattern: Any, key: str) -> bool:
    try:
        return isinstance(pattern, str) and re.search(pattern, key) is not None
    except re.error:
        return True  # a pattern Python cannot read may match: its defaults count


def _unseen_default(schemas: Schemas, value: Any) -> list[str] | None:
    """The path of the first property `value` leaves out that some subschema applying to
    it gives a default other than None, or None. Broad on purpose: every branch of an
    `anyOf`/`oneOf`/`if` counts, whichever an upstream would pick."""
    applying = _closure(schemas)
    children: dict[str | int, Schemas] = {}
    if isinstance(value, dict):
        for schema, resolver in applying:
            props = schema.get("properties")
            props = props if isinstance(props, Mapping) else {}
            for key, sub in props.items():
                if key in value:
                    children.setdefault(key, []).append((sub, resolver))
                elif any(s.get("default") is not None for s, _ in _closure([(sub, resolver)])):
                    return [str(key)]
            patterns = schema.get("patternProperties")
            patterns = patterns if isinstance(patterns, Mapping) else {}
            others = [schema.get(k) for k in ("additionalProperties", "unevaluatedProperties")]
            for key in value:
                matched = [sub for pattern, sub in patterns.items() if _matches(pattern, key)]
                rest = others if key not in props and not matched else []
                children.setdefault(key, []).extend((sub, resolver) for sub in matched + rest)
    elif isinstance(value, list):
        for schema, resolver in applying:
            prefix, items = schema.get("prefixItems"), schema.get("items")
            if isinstance(items, list):  # drafts before 2020-12
                prefix, items = items, schema.get("additionalItems")
            prefix = prefix if isinstance(prefix, list) else []
            every = [schema.get(k) for k in ("contains", "unevaluatedItems")]
            for i in range(len(value)):
                own = [prefix[i]] if i < len(prefix) else [items]
                children.setdefault(i, []).extend((sub, resolver) for sub in own + every)
    for place, subs in children.items():
        below = _unseen_default(subs, value[place])
        if below is not None:
            return [str(place), *below]
    return None


def _fast_validator(parameters: Mapping[str, Any]) -> Any:
    """A jsonschema_rs validator (formats not asserted, as jsonschema's default; never online)."""
    try:
        return jsonschema_rs.validator_for(dict(parameters), validate_formats=False, offline=True)
    except Exception:  # a schema it cannot build: jsonschema validates alone
        return None


def _schema_problem(
    cls: type[jsonschema.protocols.Validator], schema: dict[str, Any]
) -> str | None:
    """What is wrong with `schema` as a JSON Schema of its draft (`cls`), or None; the
    answer for a schema of JSON values only is kept, by its exact JSON text (a registry
    built again, or many with the same tools, checks each schema once)."""
    try:
        text = json.dumps(schema, sort_keys=True) if _json_only(schema) else None
    except RecursionError:
        return "JSON Schema nested too deep"
    if text is None:
        return _check_schema(cls, schema)
    return _checked_schema(cls, text)


@functools.lru_cache(maxsize=4096)
def _checked_schema(cls: type[jsonschema.protocols.Validator], text: str) -> str | None:
    return _check_schema(cls, json.loads(text))


def _check_schema(cls: type[jsonschema.protocols.Validator], schema: Any) -> str | None:
    try:
        cls.check_schema(schema)
    except jsonschema.SchemaError as exc:
        return f"invalid JSON Schema: {exc.message}"
    except RecursionError:
        return "JSON Schema nested too deep"
    return None


def _json_only(value: Any) -> bool:
    """Whether `value` is made of JSON's own types only (dict with str keys, list, str,
    int, float, bool, None), which its JSON text tells apart; a tuple, say, would be
    written as the list it is not to a JSON Schema check."""
    stack = [value]
    while stack:
        node = stack.pop()
        kind = type(node)
        if kind is dict:
            if not all(type(k) is str for k in node):
                return False
            stack.extend(node.values())
        elif kind is list:
            stack.extend(node)
        elif kind not in _LEAVES:
            return False
    return True


def make_tool(
    name: str,
    parameters: Mapping[str, Any],
    executor: Callable[..., Any],
    *,
    description: str = "",
    effect: str = "read",
    resource: ResourceRule | None = None,
    sensitive: tuple[str, ...] | frozenset[str] = (),
    labels: tuple[str, ...] | frozenset[str] = (),
    atomic: bool = False,
    opaque: bool = False,
    convert: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> Tool:
    """Build a Tool from a name, a JSON Schema of its arguments and an executor.

    `labels` are added to the session whenever the tool has run: declare
    `("untrusted",)` for a tool whose output comes from outside (web pages,
    e-mail, files, other agents), so policy can condition on it. `atomic`
    declares that nothing happened when the tool raised, so a budget it
    reserved is given back; by default a tool that raised keeps its
    reservation (its side effect may have happened before it failed). An
    `opaque` tool returns data the gate cannot view (`warded.outputs`): its
    results are never scanned or masked, and each call labels the session
    `untrusted`.
    `convert` turns the thawed arguments into the executor's keyword
    arguments (`typed_arguments` for functions with rich parameter types).
    """
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise ToolDefinitionError(f"tool name {name!r} must match {NAME.pattern}")
    if effect not in EFFECTS:
        raise ToolDefinitionError(f"effect must be one of {', '.join(EFFECTS)}, got {effect!r}")
    if not callable(executor):
        raise ToolDefinitionError(f"tool {name!r}: executor is not callable")
    if isinstance(labels, str) or not all(isinstance(x, str) and x for x in labels):
        raise ToolDefinitionError(f"tool {name!r}: labels must be non-empty strings")
    if not isinstance(parameters, Mapping) or parameters.get("type") != "object":
        raise ToolDefinitionError(f"tool {name!r}: parameters must be a JSON Schema of type object")
    cls = jsonschema.validators.validator_for(parameters, default=jsonschema.Draft202012Validator)
    problem = _schema_problem(cls, dict(parameters))
    if problem is not None:
        raise ToolDefinitionError(f"tool {name!r}: {problem}")
    frozen_params = copy.deepcopy(dict(parameters))
    return Tool(
        name=name,
        description=description,
        parameters=frozen_params,
        effect=effect,
        executor=executor,
        resource=resource,
        sensitive=frozenset(sensitive),
        labels=frozenset(labels),
        validator=cls(frozen_params),
        fast=_fast_validator(frozen_params),
        is_async=is_async(executor),
        atomic=bool(atomic),
        opaque=bool(opaque),
        convert=convert,
    )


def is_async(executor: Callable[..., Any]) -> bool:
    """Whether calling `executor` gives a coroutine: an async function, a partial
    of one, or an object whose `__call__` is async."""
    target: Any = executor
    while isinstance(target, functools.partial):
        target = target.func
    if inspect.iscoroutinefunction(target):
        return True
    call = getattr(target, "__call__", None)  # noqa: B004 - the method itself is inspected
    return call is not None and inspect.iscoroutinefunction(call)


_PLAIN = (Any, str, int, bool, inspect.Parameter.empty)


def typed_arguments(fn: Callable[..., Any]) -> Callable[[dict[str, Any]], dict[str, Any]] | None:
    """A converter from JSON arguments to `fn`'s parameter types (pydantic TypeAdapters),
    or None when every parameter takes JSON values as they are."""
    try:
        hints = get_type_hints(fn, include_extras=True)
    except Exception as exc:
        raise ToolDefinitionError(f"{fn.__name__}: cannot read type hints: {exc}") from None
    adapters = {
        name: pydantic.TypeAdapter(hint)
        for name, hint in hints.items()
        if name != "return" and hint not in _PLAIN
    }
    if not adapters:
        return None

    def convert(value: dict[str, Any]) -> dict[str, Any]:
        out = dict(value)
        for name, adapter in adapters.items():
            if name in out:
                out[name] = _typed(adapter, out[name], name)
        return out

    return convert


def model_arguments(model: type[pydantic.BaseModel]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A converter giving the arguments as they are, once `model`, which the tool
    validates them with when it runs, accepts them without filling a default."""
    adapter = pydantic.TypeAdapter(model)

    def convert(value: dict[str, Any]) -> dict[str, Any]:
        _typed(adapter, value, None)
        return value

    return convert


def _typed(adapter: pydantic.TypeAdapter[Any], value: Any, name: str | None) -> Any:
    """`value` validated by `adapter`; ArgumentError saying where and what (never the
    value) if it refuses it, or if it filled a default the policy never saw."""
    try:
        typed = adapter.validate_python(value)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]  # its message would quote the value: only where and what
        path = "/".join([*([name] if name else []), *(str(p) for p in first["loc"])])
        raise ArgumentError(f"{path or '(arguments)'}: violates {first['type']!r}") from None
    dumped = adapter.dump_python(typed, by_alias=True, exclude_computed_fields=True, warnings=False)
    unseen = _filled(value, dumped)
    if unseen is not None:  # pydantic filled a nested default the policy never saw
        path = "/".join([*([name] if name else []), *unseen])
        raise ArgumentError(f"{path}: missing (its default is not sent)")
    return typed


def _filled(given: Any, typed: Any) -> list[str] | None:
    """The path of a key `typed` (a validated value, dumped) has and `given` lacks, but
    for a None (the policy sees no null: an attribute left out or null is absent)."""
    if isinstance(given, Mapping) and isinstance(typed, Mapping):
        for key, value in typed.items():
            if key not in given:
                if value is None:
                    continue
                return [str(key)]
            below = _filled(given[key], value)
            if below is not None:
                return [str(key), *below]
    elif isinstance(given, list) and isinstance(typed, list | tuple) and len(given) == len(typed):
        for i, (g, t) in enumerate(zip(given, typed, strict=True)):
            below = _filled(g, t)
            if below is not None:
                return [str(i), *below]
    return None


def schema_from_signature(fn: Callable[..., Any]) -> dict[str, Any]:
    """The JSON Schema of `fn`'s keyword arguments, from its type hints (pydantic)."""
    try:
        hints = get_type_hints(fn, include_extras=True)
    except Exception as exc:
        raise ToolDefinitionError(f"{fn.__name__}: cannot read type hints: {exc}") from None
    fields: dict[str, Any] = {}
    for p in inspect.signature(fn).parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD, p.POSITIONAL_ONLY):
            raise ToolDefinitionError(
                f"{fn.__name__}: parameter {p.name!r} must be a plain keyword"
            )
        annotation = hints.get(p.name, Any)
        default = ... if p.default is p.empty else p.default
        fields[p.name] = (annotation, default)
    try:
        model = pydantic.create_model(
            fn.__name__, __config__=pydantic.ConfigDict(extra="forbid"), **fields
        )
        schema: dict[str, Any] = model.model_json_schema()
    except (
        pydantic.PydanticUserError,
        pydantic.errors.PydanticSchemaGenerationError,
        TypeError,
    ) as exc:
        raise ToolDefinitionError(f"{fn.__name__}: cannot derive a JSON Schema: {exc}") from None
    schema.pop("title", None)
    for prop in schema.get("properties", {}).values():
        if isinstance(prop, dict):
            prop.pop("title", None)
    return schema


def describe(fn: Callable[..., Any]) -> str:
    doc = inspect.getdoc(fn) or ""
    return doc.strip().split("\n\n")[0].replace("\n", " ")
