"""Model prices: a data file of defaults, merged with a deployment's own file.

File format (``prices.json`` next to this module, and ``MODEL_PRICES_FILE``)::

    {
      "_comment": "...", "as_of": "2025-06",
      "models": {
        "gpt-4o-mini": {"provider": "openai",
                        "input_per_million": "0.15", "output_per_million": "0.60",
                        "max_output_tokens": 16384}
      }
    }

Prices are USD per one million tokens; ``max_output_tokens`` is the most the model
generates in one call, the output bound the budget reserves for a call that sends no
``max_tokens`` of its own (a LangGraph graph's chat model configured without one).
Every field is required: a model without its maximum output is a configuration
error, like a model without a price. Top-level keys other than ``models`` are notes
and are ignored.

Design decisions:

* **Exact decimals.** JSON numbers are parsed straight into :class:`~decimal.Decimal`
  (``parse_float=Decimal``), never through ``float``, and strings are accepted too,
  so ``0.15`` is exactly 0.15 and budgets compare exactly. ``NaN``/``Infinity``,
  booleans and negative prices are rejected. Zero is allowed: a self-hosted model
  may really be free, and writing ``"0"`` is a deliberate act — unlike a *missing*
  price, which the assistant registry refuses.
* **Merged per model and per field.** The override's entry for a model is laid over
  the default entry, so ``{"gpt-4o": {"input_per_million": "2.00"}}`` changes one
  price and keeps the provider; a model that only the override names must be
  complete. Unknown fields are errors, so a typo cannot silently keep a stale price.
* **Loud failures.** Any unreadable or malformed file raises
  :class:`~chalicelib.domain.errors.ConfigurationError` naming the file, the model
  and the field: a deployment with broken prices must not start running agents.
"""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from chalicelib.agents.base import ModelPrice
from chalicelib.domain.errors import ConfigurationError

DEFAULT_PRICES_FILE = Path(__file__).resolve().parent / "prices.json"

_FIELDS = frozenset({"provider", "input_per_million", "output_per_million", "max_output_tokens"})


def load_prices(default_path: str | Path, override_path: str | None) -> dict[str, ModelPrice]:
    """Read the default prices and lay ``override_path`` (if any) over them.

    Args:
        default_path: the shipped defaults (normally :data:`DEFAULT_PRICES_FILE`).
        override_path: a deployment's file (``MODEL_PRICES_FILE``); ``None`` or ``""``
            for none.

    Returns:
        Model id → price, in file order (defaults first, then override-only models).

    Raises:
        ConfigurationError: a file is unreadable, is not JSON, or has a bad entry.
    """
    entries = _read_models(default_path)
    sources = dict.fromkeys(entries, str(default_path))
    if override_path:
        for model, fields in _read_models(override_path).items():
            entries[model] = {**entries.get(model, {}), **fields}
            sources[model] = str(override_path)
    return {model: _price(model, fields, sources[model]) for model, fields in entries.items()}


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a price")


def _read_models(path: str | Path) -> dict[str, dict[str, Any]]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(
            f"cannot read model prices file {path}: {exc.strerror or exc}"
        ) from exc
    try:
        document = json.loads(text, parse_float=Decimal, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise ConfigurationError(
            f"model prices file {path} is not valid JSON: {exc.msg} "
            f"(line {exc.lineno}, column {exc.colno})"
        ) from exc
    except ValueError as exc:  # NaN / Infinity
        raise ConfigurationError(f"model prices file {path}: {exc}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("models"), dict):
        raise ConfigurationError(
            f'model prices file {path} must be an object with a "models" object '
            "(model id → {provider, input_per_million, output_per_million, max_output_tokens})"
        )
    models: dict[str, dict[str, Any]] = {}
    for model, fields in document["models"].items():
        if not model.strip():
            raise ConfigurationError(f"model prices file {path}: empty model id")
        if not isinstance(fields, dict):
            raise ConfigurationError(f"model prices file {path}: {model!r} must be an object")
        unknown = sorted(set(fields) - _FIELDS)
        if unknown:
            raise ConfigurationError(
                f"model prices file {path}: {model!r} has unknown field(s) {', '.join(unknown)}; "
                f"expected {', '.join(sorted(_FIELDS))}"
            )
        models[model] = dict(fields)
    return models


def _price(model: str, fields: dict[str, Any], source: str) -> ModelPrice:
    missing = sorted(_FIELDS - set(fields))
    if missing:
        raise ConfigurationError(
            f"model prices file {source}: {model!r} is missing {', '.join(missing)}"
        )
    provider = fields["provider"]
    if not isinstance(provider, str) or not provider.strip():
        raise ConfigurationError(
            f"model prices file {source}: {model!r}.provider must be a non-empty string"
        )
    return ModelPrice(
        model=model,
        provider=provider,
        input_per_million=_amount(fields["input_per_million"], model, "input_per_million", source),
        output_per_million=_amount(
            fields["output_per_million"], model, "output_per_million", source
        ),
        max_output_tokens=_token_count(fields["max_output_tokens"], model, source),
    )


def _token_count(value: Any, model: str, source: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigurationError(
            f"model prices file {source}: {model!r}.max_output_tokens must be a positive "
            f"integer, not {value!r}"
        )
    return value


def _amount(value: Any, model: str, field: str, source: str) -> Decimal:
    where = f"model prices file {source}: {model!r}.{field}"
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        raise ConfigurationError(f"{where} must be a number or a decimal string, not {value!r}")
    try:
        amount = Decimal(value.strip() if isinstance(value, str) else value)
    except InvalidOperation as exc:
        raise ConfigurationError(f"{where} is not a decimal number: {value!r}") from exc
    if not amount.is_finite() or amount < 0:
        raise ConfigurationError(f"{where} must be a finite, non-negative number, not {value!r}")
    return amount
