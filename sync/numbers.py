"""How a legacy decimal becomes what the destination accepts: a whole quantity or a money amount.

Legacy stock is often fractional (``ONHAND`` with 3 decimals) and prices carry 4
decimals; Shopify counts whole units and prices in the shop currency's minor unit.
Nothing is cut silently: a sync field declares ``rounding`` (quantities become
integers) or ``currency`` / ``currency_decimals`` (money is quantized to the
currency's decimals), and every value that changed in the process is reported as
a ``Rounded`` note, kept per record in the id map and shown by ``--dry-run``.

``expression`` fields compute a value from several API fields with ``+ - *`` and
parentheses (``on_hand - allocated``), evaluated on Decimals from a parsed tree,
never with ``eval``.
"""

from __future__ import annotations

import ast
import decimal
import functools
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

__all__ = (
    "CURRENCY_DECIMALS",
    "ExpressionError",
    "Rounded",
    "Rounding",
    "compile_expression",
    "evaluate",
    "expression_names",
    "to_destination",
)

Rounding = Literal["floor", "ceil", "round_half_even", "round_half_up", "truncate"]
_MODES: dict[str, str] = {
    "floor": decimal.ROUND_FLOOR,
    "ceil": decimal.ROUND_CEILING,
    "round_half_even": decimal.ROUND_HALF_EVEN,
    "round_half_up": decimal.ROUND_HALF_UP,
    "truncate": decimal.ROUND_DOWN,
}
_TWO = "USD EUR GBP CAD AUD NZD CHF SEK NOK DKK PLN CZK MXN BRL ZAR INR SGD HKD CNY ILS AED HUF"
CURRENCY_DECIMALS: dict[str, int] = {
    # ISO 4217 minor units of the currencies a small shop is likely to sell in; others: currency_decimals.
    **dict.fromkeys(_TWO.split(), 2),
    **dict.fromkeys(["JPY", "KRW", "ISK", "CLP", "VND", "XAF", "XOF"], 0),
    **dict.fromkeys(["KWD", "BHD", "OMR", "JOD", "TND"], 3),
}


@dataclass(frozen=True, slots=True)
class Rounded:
    """One value the destination could not take as it was."""

    source: str
    sent: str
    rule: str

    def as_dict(self) -> dict[str, str]:
        return {"from": self.source, "to": self.sent, "rule": self.rule}


class ExpressionError(ValueError):
    """An ``expression`` uses something other than field names, numbers, + - * and parentheses."""


def _decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return Decimal(str(value))
    except decimal.InvalidOperation:
        return None


def to_destination(value: Any, *, rounding: Rounding | None, decimals: int | None) -> tuple[Any, Rounded | None]:
    """``value`` as the destination takes it (int for quantities, a string amount for money), and a note.

    Non-numbers pass through unchanged for the connector to refuse with a clear error.
    """
    number = _decimal(value)
    if number is None or (rounding is None and decimals is None) or not number.is_finite():
        return value, None
    places = decimals or 0
    rule = rounding or "round_half_even"  # money: banker's rounding unless the mapping says otherwise
    quantized = number.quantize(Decimal(1).scaleb(-places), rounding=_MODES[rule])
    out: Any = int(quantized) if decimals is None else format(quantized, "f")
    note = None if quantized == number else Rounded(format(number, "f"), str(out), rule)
    return out, note


# -- expressions ---------------------------------------------------------------------------

_ALLOWED = (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Name, ast.Load, ast.Constant,
            ast.Add, ast.Sub, ast.Mult, ast.USub, ast.UAdd)  # fmt: skip


@functools.lru_cache(maxsize=256)
def compile_expression(text: str) -> ast.Expression:
    """Parse and check an expression (at config load; cached, as every row of a run evaluates it)."""
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"cannot parse {text!r}: {exc.msg}") from None
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED):
            raise ExpressionError(f"{text!r}: only field names, numbers, + - * and parentheses are allowed")
        if isinstance(node, ast.Constant) and (isinstance(node.value, bool) or not isinstance(node.value, int | float)):
            raise ExpressionError(f"{text!r}: {node.value!r} is not a number")
    return tree


def expression_names(text: str) -> set[str]:
    return {n.id for n in ast.walk(compile_expression(text)) if isinstance(n, ast.Name)}


def evaluate(text: str, row: dict[str, Any]) -> Decimal | None:
    """The expression's value over one row; None when an operand is null or not a number."""

    def walk(node: ast.AST) -> Decimal | None:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant):
            return Decimal(str(node.value))
        if isinstance(node, ast.Name):
            return _decimal(row.get(node.id))
        if isinstance(node, ast.UnaryOp):
            inner = walk(node.operand)
            return None if inner is None else (-inner if isinstance(node.op, ast.USub) else inner)
        assert isinstance(node, ast.BinOp)
        left, right = walk(node.left), walk(node.right)
        if left is None or right is None:
            return None
        if isinstance(node.op, ast.Add):
            return left + right
        if isinstance(node.op, ast.Sub):
            return left - right
        return left * right

    return walk(compile_expression(text))
