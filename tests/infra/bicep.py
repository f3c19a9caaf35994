"""Read the Bicep templates in infra/ for tests: parse them and evaluate simple expressions.

`pycep-parser` turns a .bicep file into JSON. Its output does not tell an identifier from a
string literal (``name: 'x'`` and ``name: x`` both give ``"x"``), so `Evaluator` resolves a
bare string as a reference only when it names a parameter or variable of the same file;
everything else (module outputs, resource properties, function calls it does not model) is
an `Opaque` placeholder carrying the expression's text. That is enough to build the app's
settings from ``main.bicep`` in each mode and to check which roles go to whom.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pycep import BicepParser

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
MODULES = INFRA / "modules"
HOOKS = INFRA / "hooks"

_INTERPOLATION = re.compile(r"\$\{([^{}]*(?:\{[^{}]*\}[^{}]*)*)\}")


def bicep_files() -> list[Path]:
    """Every Bicep file of the template."""
    return sorted(INFRA.rglob("*.bicep"))


@functools.cache
def parse(path: Path) -> dict[str, Any]:
    """The pycep JSON of one file (cached: parsing takes a noticeable fraction of a second)."""
    return dict(BicepParser(cache=False).parse(file_path=path))


def module(name: str) -> dict[str, Any]:
    """The parsed ``infra/modules/<name>.bicep``."""
    return parse(MODULES / f"{name}.bicep")


def main() -> dict[str, Any]:
    """The parsed ``infra/main.bicep``."""
    return parse(INFRA / "main.bicep")


@dataclass(frozen=True)
class Opaque:
    """An expression the evaluator does not compute (a module output, a resource id...)."""

    text: str

    def placeholder(self) -> str:
        """A value that stands in for it in settings: lowercase letters, digits and dashes,
        so it also fits in a host name (``https://<placeholder>.cognitiveservices...``)."""
        return re.sub(r"[^a-z0-9]+", "-", self.text.lower()).strip("-") or "x"


def expression_text(node: Any) -> str:
    """A readable rendering of a pycep expression node (for placeholders and messages)."""
    if isinstance(node, str):
        return node
    if isinstance(node, Mapping):
        if "operator" in node and node["operator"]["type"] == "property_accessor":
            ops = node["operator"]["operands"]
            return f"{expression_text(ops['operand_1'])}.{expression_text(ops['operand_2'])}"
        if "function" in node:
            fn = node["function"]
            args = ", ".join(expression_text(v) for v in (fn.get("parameters") or {}).values())
            return f"{fn['type']}({args})"
        if "operator" in node:
            ops = ", ".join(expression_text(v) for v in node["operator"]["operands"].values())
            return f"{node['operator']['type']}({ops})"
    return repr(node)


class Evaluator:
    """Evaluates pycep expressions of one file, with chosen parameter values."""

    def __init__(self, doc: Mapping[str, Any], params: Mapping[str, Any] | None = None) -> None:
        self._doc = doc
        self._params = {
            name: spec.get("default") for name, spec in doc.get("parameters", {}).items()
        }
        unknown = set(params or {}) - set(self._params)
        if unknown:
            raise KeyError(f"no such parameters: {sorted(unknown)}")
        self._params.update(params or {})
        self._variables = doc.get("variables", {})

    def is_reference(self, name: str) -> bool:
        """True when `name` is a parameter or variable of the file."""
        return name in self._params or name in self._variables

    def value(self, node: Any) -> Any:
        """The value of an expression node; `Opaque` for what cannot be computed here."""
        if isinstance(node, str):
            if node in self._params:
                return self._params[node]
            if node in self._variables:
                return self.value(self._variables[node]["value"])
            if "${" in node:
                return self._interpolate(node)
            return node
        if isinstance(node, list):
            return [self.value(item) for item in node]
        if isinstance(node, Mapping):
            if "operator" in node:
                return self._operator(node)
            if "function" in node:
                return self._function(node)
            return {self.key(k): self.value(v) for k, v in node.items()}
        return node

    def variable(self, name: str) -> Any:
        """The value of a variable."""
        return self.value(self._variables[name]["value"])

    def key(self, raw: str) -> str:
        """An object key: quoted keys lose their quotes, interpolated ones are computed."""
        if len(raw) >= 2 and raw[0] == raw[-1] == "'":
            raw = raw[1:-1]
        value = self._interpolate(raw) if "${" in raw else raw
        return value if isinstance(value, str) else str(value)

    def _interpolate(self, text: str) -> str:
        def one(match: re.Match[str]) -> str:
            inner = match.group(1).strip()
            resolved = self.value(inner) if self.is_reference(inner) else Opaque(inner)
            return resolved.placeholder() if isinstance(resolved, Opaque) else str(resolved)

        return _INTERPOLATION.sub(one, text)

    def _operator(self, node: Mapping[str, Any]) -> Any:
        op = node["operator"]
        kind, operands = op["type"], op["operands"]
        if kind == "conditional":
            condition = self.value(operands["condition"])
            if isinstance(condition, Opaque):
                return Opaque(expression_text(node))
            return self.value(operands["true_value" if condition else "false_value"])
        if kind == "not":
            inner = self.value(operands["bool_value"])
            return Opaque(expression_text(node)) if isinstance(inner, Opaque) else not inner
        if kind == "property_accessor":
            # `roles.speechUser`: a property of an object variable or parameter.
            owner, prop = operands["operand_1"], operands["operand_2"]
            if isinstance(owner, str) and isinstance(prop, str) and self.is_reference(owner):
                value = self.value(owner)
                if isinstance(value, Mapping) and prop in value:
                    return value[prop]
        return Opaque(expression_text(node))

    def _function(self, node: Mapping[str, Any]) -> Any:
        fn = node["function"]
        args = [self.value(v) for v in (fn.get("parameters") or {}).values()]
        if fn["type"] == "union" and all(isinstance(a, dict) for a in args):
            merged: dict[str, Any] = {}
            for arg in args:
                merged.update(arg)
            return merged
        if fn["type"] == "empty" and len(args) == 1 and not isinstance(args[0], Opaque):
            return not args[0]
        return Opaque(expression_text(node))


def resources_of_type(doc: Mapping[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    """The resources of a file with the given type, by symbolic name."""
    return {
        name: res
        for name, res in doc.get("resources", {}).items()
        if res["type"].lower() == type_.lower()
    }


def body(resource: Mapping[str, Any]) -> dict[str, Any]:
    """The resource body, unwrapping pycep's ``condition``/``loop`` nesting."""
    config = resource["config"]
    while True:
        if "loop_type" in config or "for" in config:
            config = config.get("config", config)
            continue
        if "condition" in config and "config" in config:
            config = config["config"]
            continue
        return dict(config)


def condition(resource: Mapping[str, Any]) -> Any:
    """The ``if (...)`` condition of a resource or module, or None when it has none."""
    config = resource["config"]
    return config.get("condition") if "config" in config else None
