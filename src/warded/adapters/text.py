"""The text between a model and the gate: arguments in, results out.

Arguments the model wrote as JSON text are decoded and handed to the gate as
they are. Text that is not JSON, or JSON that is not an object, is still
handed to the gate, which refuses it as `invalid_arguments` and records the
attempt; an adapter never refuses on its own, and never raises.

What the model gets back is one string per call:

- a `Refusal` or a `ToolFailure`: its `to_model()` text (neutral JSON with the
  refusal's fields), never wording of the adapter's own;
- a string result: the string;
- any other result: pydantic's JSON serialisation (`pydantic_core.to_json`):
  models and dataclasses as objects, dates and times in ISO 8601, enums as
  their values, tuples and sets as arrays, bytes in URL-safe base64, NaN and
  infinities as `null`, object keys in the result's own order; an object it
  does not know becomes its `str()`, and a value it cannot encode at all
  (lone surrogates, keys that are not strings or numbers) becomes `str()` of
  the whole result, as one JSON string.
"""

from __future__ import annotations

import json
from typing import Any

import pydantic_core

from warded.model import Refusal, ToolFailure


def decode_arguments(text: str) -> Any:
    """The model's JSON arguments as a value for the gate; empty text means no arguments.

    Text that does not decode is returned as it is, for the gate to refuse.
    """
    if not text.strip():
        return {}
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return text


def model_text(result: Any) -> str:
    """The text the model gets for what `gate.call` returned."""
    if isinstance(result, Refusal | ToolFailure):
        return result.to_model()
    if isinstance(result, str):
        return result
    try:
        encoded = pydantic_core.to_json(
            result, serialize_unknown=True, bytes_mode="base64", inf_nan_mode="null"
        )
    except pydantic_core.PydanticSerializationError:  # e.g. lone surrogates, frozenset keys
        return json.dumps(str(result))
    return encoded.decode()


def is_error(result: Any) -> bool:
    """Whether the gate answered with a refusal or a failure rather than the tool's result."""
    return isinstance(result, Refusal | ToolFailure)
