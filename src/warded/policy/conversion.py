"""Request JSON to Cedar values, as generated code: `runtime.converter`, compiled once per type.

`converter(t, schema)` returns a function that accepts exactly the values
`runtime.converter(t, schema)` accepts, returns the same Cedar values, and
raises `Fallback` wherever it does. It is generated as Python source once
per action's context type (at slice compilation), so a call pays for the
checks its value needs and nothing else: records unrolled field by field,
Longs, Bools and Strings checked in line, sets of strings and Longs built
without a call per element.
"""

from __future__ import annotations

from typing import Any

from warded.policy import runtime as rt
from warded.policy import schema as s

_MISSING = object()
_LONG = f"{rt.LONG_MIN} <= {{x}} <= {rt.LONG_MAX}"


def converter(t: s.Type, schema: s.Schema) -> rt.Converter:
    """`runtime.converter(t, schema)`, as generated code."""
    gen = _Generator(schema)
    entry = gen.function(t)
    source = "\n".join(gen.lines) + "\n"
    env = dict(gen.env)
    exec(compile(source, "<warded converter>", "exec"), env)
    fn: rt.Converter = env[entry]
    return fn


class _Generator:
    def __init__(self, schema: s.Schema) -> None:
        self.schema = schema
        self.lines: list[str] = []
        self.env: dict[str, Any] = {
            "_fail": rt.fail,
            "_text": rt.text,
            "_cset": rt.cset,
            "_CSet": rt.CSet,
            "_decimal": rt._decimal_value,
            "_M": _MISSING,
        }
        self.count = 0

    def name(self, prefix: str) -> str:
        self.count += 1
        return f"_{prefix}{self.count}"

    def function(self, t: s.Type) -> str:
        """The name of a generated (or library) function converting values of type `t`."""
        if isinstance(t, s.Prim):
            if t.name in ("Long", "Bool", "String"):
                return self._prim(t)
            return "_decimal" if t.name == "decimal" else "_fail"  # ipaddr, datetime, duration
        if isinstance(t, s.EntityRef):
            decl = self.schema.entities.get(t.name)
            if decl is None:
                return "_fail"
            name = self.name("entity")
            self.env[name] = rt._entity_converter(t.name, decl.enum)
            return name
        if isinstance(t, s.SetOf):
            return self._set(t)
        return self._record(t)

    def _prim(self, t: s.Prim) -> str:
        name = self.name(t.name.lower())
        body = self.check(t, "x", "    ")
        self.lines += [f"def {name}(x):", *body, "    return x", ""]
        return name

    def check(self, t: s.Type, x: str, indent: str) -> list[str]:
        """Lines that check `x` in place, if `t` is a type whose Cedar value is its JSON value."""
        if isinstance(t, s.Prim) and t.name == "Long":
            return [f"{indent}if type({x}) is not int or not {_LONG.format(x=x)}: _fail()"]
        if isinstance(t, s.Prim) and t.name == "Bool":
            return [f"{indent}if type({x}) is not bool: _fail()"]
        if isinstance(t, s.Prim) and t.name == "String":
            return [
                f"{indent}if type({x}) is not str: _fail()",
                f"{indent}if not {x}.isascii(): _text({x})",
            ]
        return []

    def _set(self, t: s.SetOf) -> str:
        name = self.name("set")
        element = t.element
        lines = [f"def {name}(v):", "    if type(v) is not list: _fail()"]
        inline = self.check(element, "y", "        ")
        if inline:  # a String or a Long is its own canonical key (a Bool is not)
            if isinstance(element, s.Prim) and element.name == "Bool":
                lines.append("    return _cset(v) if all(type(y) is bool for y in v) else _fail()")
            else:
                lines += ["    for y in v:", *inline, "    return _CSet(frozenset(v))"]
        else:
            convert = self.function(element)
            lines.append(f"    return _cset([{convert}(y) for y in v])")
        self.lines += [*lines, ""]
        return name

    def _record(self, t: s.Record) -> str:
        name = self.name("record")
        body = ["    if type(v) is not dict: _fail()", "    out = {}", "    n = 0"]
        for key, (field, required) in t.attrs.items():
            body.append(f"    x = v.get({key!r}, _M)")
            body.append("    if x is not _M:")
            body.append("        n += 1")
            inline = self.check(field, "x", "        ")
            if inline:
                body += inline
                body.append(f"        out[{key!r}] = x")
            else:
                body.append(f"        out[{key!r}] = {self.function(field)}(x)")
            if required:
                body.append("    else: _fail()")
        body += ["    if n != len(v): _fail()", "    return out"]
        self.lines += [f"def {name}(v):", *body, ""]
        return name
