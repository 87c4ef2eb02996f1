"""A tiny, safe arithmetic language over measure names: numbers, names, + - * / and
parentheses. Parsed by recursive descent into a tree; never ``eval``-ed."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from medalliance.errors import ValidationFailed

_TOKEN = re.compile(r"\s*(?:(\d+(?:\.\d+)?)|([A-Za-z_][A-Za-z0-9_]*)|(.))")
MAX_LENGTH = 500


@dataclass(frozen=True)
class Num:
    value: float


@dataclass(frozen=True)
class Ref:
    name: str


@dataclass(frozen=True)
class Neg:
    operand: Expr


@dataclass(frozen=True)
class BinOp:
    op: str
    left: Expr
    right: Expr


Expr = Num | Ref | Neg | BinOp


class ExpressionError(ValidationFailed):
    """A formula that does not parse (422, naming the field)."""


def _tokens(text: str, field: str) -> list[str]:
    found: list[str] = []
    for number, name, other in _TOKEN.findall(text):
        token = number or name or other
        if other and other not in "+-*/()":
            if other.strip():
                raise ExpressionError(f"{field}: unexpected character {other!r}", field=field)
            continue
        found.append(token)
    return found


class _Parser:
    def __init__(self, tokens: list[str], field: str) -> None:
        self.tokens, self.pos, self.field = tokens, 0, field

    def fail(self, message: str) -> ExpressionError:
        return ExpressionError(f"{self.field}: {message}", field=self.field)

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str:
        token = self.peek()
        if token is None:
            raise self.fail("formula ends too early")
        self.pos += 1
        return token

    def expression(self) -> Expr:
        node = self.term()
        while self.peek() in ("+", "-"):
            op = self.take()
            node = BinOp(op, node, self.term())
        return node

    def term(self) -> Expr:
        node = self.factor()
        while self.peek() in ("*", "/"):
            op = self.take()
            node = BinOp(op, node, self.factor())
        return node

    def factor(self) -> Expr:
        token = self.take()
        if token == "-":
            return Neg(self.factor())
        if token == "(":
            node = self.expression()
            if self.take() != ")":
                raise self.fail("missing closing parenthesis")
            return node
        if token[0].isdigit():
            return Num(float(token))
        if token[0].isalpha() or token[0] == "_":
            return Ref(token)
        raise self.fail(f"unexpected {token!r}")


def parse(text: str, field: str = "formula") -> Expr:
    if not text.strip():
        raise ExpressionError(f"{field}: formula is empty", field=field)
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"{field}: formula is longer than {MAX_LENGTH}", field=field)
    parser = _Parser(_tokens(text, field), field)
    node = parser.expression()
    if parser.peek() is not None:
        raise parser.fail(f"unexpected {parser.peek()!r}")
    return node


def names(node: Expr) -> set[str]:
    if isinstance(node, Ref):
        return {node.name}
    if isinstance(node, Neg):
        return names(node.operand)
    if isinstance(node, BinOp):
        return names(node.left) | names(node.right)
    return set()


def evaluate(node: Expr, values: Mapping[str, float]) -> float | None:
    """The value, or None when it divides by zero (a rate of nothing is not 0 %)."""
    if isinstance(node, Num):
        return node.value
    if isinstance(node, Ref):
        return values[node.name]
    if isinstance(node, Neg):
        inner = evaluate(node.operand, values)
        return None if inner is None else -inner
    left, right = evaluate(node.left, values), evaluate(node.right, values)
    if left is None or right is None:
        return None
    if node.op == "+":
        return left + right
    if node.op == "-":
        return left - right
    if node.op == "*":
        return left * right
    return None if right == 0 else left / right
