"""AgentDojo suites as warded sees them: tools with JSON Schemas, labels and a bundle.

Each suite has a policy directory, `examples/agentdojo/<suite>/` by default,
holding a normal bundle (`*.cedar`, `schema.cedarschema`, `entities.json`)
and a `tools.yaml` saying how the suite's tools are registered in the gate:
their effect, the session labels they add (a tool whose output carries text
written by someone other than the user adds `untrusted`), and optionally the
Cedar resource a call touches. It also names the agent (the principal) and
the approver who answers approvals for the user.

AgentDojo is imported lazily: nothing here needs it until a suite is loaded,
and its absence is one clear error naming the extra to install.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from warded.errors import WardedError
from warded.tools import EFFECTS

AGENTDOJO_VERSION = "0.1.35"
VERSIONS = ("v1.1.2", "v1.2.2")
SUITES = ("banking", "slack", "travel", "workspace")
EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "agentdojo"
# The baseline: the earlier policies, which judge by session labels only.
LABELS_EXAMPLES = EXAMPLES.parent / "agentdojo-labels"
TOOLS_FILE = "tools.yaml"


class EvaluationError(WardedError):
    """The harness cannot run: a missing dependency, a bad tool configuration, an unknown suite."""


def agentdojo(module: str = "agentdojo") -> ModuleType:
    """Import an AgentDojo module, or raise EvaluationError naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise EvaluationError(
            f"the AgentDojo harness needs agentdojo=={AGENTDOJO_VERSION}: "
            f"pip install 'warded[eval]' ({exc})"
        ) from None


def agentdojo_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("agentdojo")
    except PackageNotFoundError:
        return "not installed"


@dataclass(frozen=True, slots=True)
class ResourceSpec:
    """A call's Cedar resource: `type::"<args[arg]>"`, or of its URL host when `part` is host."""

    type: str
    arg: str
    part: str | None = None

    def __call__(self, args: Mapping[str, Any]) -> tuple[str, str]:
        value = args.get(self.arg)
        text = value if isinstance(value, str) else ""
        return self.type, url_host(text) if self.part == "host" else text


_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def url_host(url: str) -> str:
    """The host part of a URL as written (`www.a.com/x?y` → `www.a.com`); no case folding."""
    rest = _SCHEME.sub("", url, count=1)
    return re.split(r"[/?#\\]", rest, maxsplit=1)[0]


@dataclass(frozen=True, slots=True)
class ToolConfig:
    effect: str = "read"
    labels: tuple[str, ...] = ()
    resource: ResourceSpec | None = None


@dataclass(frozen=True, slots=True)
class SuiteConfig:
    """How one suite's tools are registered, under which principal, and who approves."""

    name: str
    policies: Path
    principal: str
    approver: str
    tools: Mapping[str, ToolConfig] = field(default_factory=dict)

    @classmethod
    def load(
        cls, name: str, policies: Path | None = None, examples: Path = EXAMPLES
    ) -> SuiteConfig:
        """Read `tools.yaml` from the suite's policy directory (default: the shipped example)."""
        root = policies if policies is not None else examples / name
        path = root / TOOLS_FILE
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise EvaluationError(f"{path}: {exc}") from None
        if not isinstance(raw, dict) or not isinstance(raw.get("tools"), dict):
            raise EvaluationError(f"{path}: expected a mapping with `tools`")
        tools = {str(k): _tool_config(path, str(k), v) for k, v in raw["tools"].items()}
        principal, approver = raw.get("principal"), raw.get("approver")
        if not isinstance(principal, str) or not isinstance(approver, str):
            raise EvaluationError(f"{path}: `principal` and `approver` must be entity ids")
        return cls(name, root, principal, approver, tools)


def _tool_config(path: Path, name: str, raw: object) -> ToolConfig:
    if raw is None:
        return ToolConfig()
    if not isinstance(raw, dict) or set(raw) - {"effect", "labels", "resource"}:
        raise EvaluationError(f"{path}: tool {name}: expected effect, labels, resource")
    effect = raw.get("effect", "read")
    if effect not in EFFECTS:
        raise EvaluationError(f"{path}: tool {name}: effect must be one of {', '.join(EFFECTS)}")
    labels = raw.get("labels", [])
    if not isinstance(labels, list) or not all(isinstance(x, str) and x for x in labels):
        raise EvaluationError(f"{path}: tool {name}: labels must be a list of strings")
    resource = raw.get("resource")
    spec = None
    if resource is not None:
        if (
            not isinstance(resource, dict)
            or not isinstance(resource.get("type"), str)
            or not isinstance(resource.get("arg"), str)
            or resource.get("part") not in (None, "host")
        ):
            raise EvaluationError(f"{path}: tool {name}: resource needs type, arg, part: host")
        spec = ResourceSpec(resource["type"], resource["arg"], resource.get("part"))
    return ToolConfig(str(effect), tuple(labels), spec)


def tool_schema(function: Any) -> dict[str, Any]:
    """The JSON Schema of an AgentDojo `Function`'s arguments, from its pydantic model.

    Titles are dropped and unknown arguments are refused (`additionalProperties:
    false`): AgentDojo's own validation silently ignores them, the gate does not.
    """
    schema: dict[str, Any] = function.parameters.model_json_schema()
    schema.pop("title", None)
    for prop in schema.get("properties", {}).values():
        if isinstance(prop, dict):
            prop.pop("title", None)
    schema.setdefault("properties", {})
    schema["additionalProperties"] = False
    return schema


def load_suite(version: str, name: str) -> Any:
    """The AgentDojo TaskSuite `name` of benchmark `version`."""
    if version not in VERSIONS:
        raise EvaluationError(f"unknown benchmark version {version!r}; use {', '.join(VERSIONS)}")
    if name not in SUITES:
        raise EvaluationError(f"unknown suite {name!r}; use {', '.join(SUITES)}")
    return agentdojo("agentdojo.task_suite.load_suites").get_suite(version, name)


def check_config(suite: Any, config: SuiteConfig) -> None:
    """Every tool of the suite must be configured, and nothing else."""
    names = {f.name for f in suite.tools}
    missing, extra = names - set(config.tools), set(config.tools) - names
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"not configured: {', '.join(sorted(missing))}")
        if extra:
            parts.append(f"not tools of the suite: {', '.join(sorted(extra))}")
        raise EvaluationError(f"{config.policies / TOOLS_FILE}: {'; '.join(parts)}")
