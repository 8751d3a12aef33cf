"""Read an AIPP config the way ATC does: protobuf text format of ``domi.InsertNewOps``.

What protobuf's text parser accepts is accepted here (``key: value`` and ``key : value``,
``#`` comments, enums by name or number, ``true/false/t/f/1/0`` booleans, fields in any order,
optional ``,``/``;`` separators, ``aipp_op { }`` or ``aipp_op: < >``, ``[a, b]`` lists for
repeated fields, decimal/hex/octal integers, ``inf``/``nan``/``1.5f`` floats), and what it
rejects is rejected, with the file, line and column: a decimal in an integer field, an unknown
field or enum value, a non-repeated field given twice. GE's own "can not be configed repeatedly"
check for repeated fields (``var_reci_chn_*``, ``matrix_*``, biases) is applied here too, since
only the parser knows the line.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infer_kit.aipp.config import AippConfig, AippOp
from infer_kit.aipp.fields import ENUMS, FIELD_BY_NAME, INT32_RANGE, UINT32_RANGE, FieldSpec
from infer_kit.errors import InferKitError, shorten
from infer_kit.fsutil import read_text


class AippConfigError(InferKitError):
    """A config ATC would reject, located in its file."""

    def __init__(self, message: str, *, where: str, line: int | None, column: int | None = None,
                 hint: str | None = None) -> None:
        self.where = where
        self.line = line
        self.column = column
        location = where if line is None else f"{where}:{line}" + (f":{column}" if column else "")
        quoted = " ".join(shorten(word) for word in message.split())  # a token can be megabytes long
        super().__init__(f"{location}: {quoted}", hint=hint)


@dataclass(frozen=True)
class Token:
    kind: str  # "ident" | "number" | "string" | "symbol" | "eof"
    text: str
    line: int
    column: int


_TOKEN_RE = re.compile(
    r"""
    (?P<space>[ \t\r\f\v]+)
  | (?P<newline>\n)
  | (?P<comment>\#[^\n]*)
  | (?P<number>(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?[fF]?)(?![A-Za-z0-9_]))
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<symbol>[{}\[\]<>:;,\-])
    """,
    re.VERBOSE,
)

_BOOL_WORDS = {"true": True, "True": True, "t": True, "false": False, "False": False, "f": False}
_FLOAT_WORDS = {"inf": float("inf"), "infinity": float("inf"), "nan": float("nan")}
_CLOSE = {"{": "}", "<": ">"}


def tokenize(text: str, where: str) -> list[Token]:
    tokens: list[Token] = []
    line, line_start, pos = 1, 0, 0
    while pos < len(text):
        match = _TOKEN_RE.match(text, pos)
        column = pos - line_start + 1
        if match is None:
            raise AippConfigError(f"Invalid character {text[pos]!r}", where=where, line=line, column=column)
        kind = match.lastgroup
        if kind == "newline":
            line, line_start = line + 1, match.end()
        elif kind not in ("space", "comment"):
            tokens.append(Token(str(kind), match.group(), line, column))
        pos = match.end()
    tokens.append(Token("eof", "", line, pos - line_start + 1))
    return tokens


class _Parser:
    def __init__(self, text: str, where: str) -> None:
        self.where = where
        self.tokens = tokenize(text, where)
        self.pos = 0

    # ---- token helpers ----------------------------------------------------------------
    @property
    def tok(self) -> Token:
        return self.tokens[self.pos]

    def advance(self) -> Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def accept(self, text: str) -> bool:
        if self.tok.kind == "symbol" and self.tok.text == text:
            self.pos += 1
            return True
        return False

    def error(self, message: str, token: Token | None = None, hint: str | None = None) -> AippConfigError:
        token = token or self.tok
        return AippConfigError(message, where=self.where, line=token.line, column=token.column, hint=hint)

    def expect(self, text: str, what: str | None = None) -> Token:
        if self.tok.kind == "symbol" and self.tok.text == text:
            return self.advance()
        got = self.tok.text or "end of file"
        raise self.error(f'Expected "{text}"{what or ""}, found "{got}"')

    # ---- grammar ----------------------------------------------------------------------
    def parse(self) -> AippConfig:
        ops: list[AippOp] = []
        while self.tok.kind != "eof":
            name = self.tok
            if name.kind != "ident":
                raise self.error(f'Expected identifier, found "{name.text}"')
            self.advance()
            if name.text == "aipp_op":
                ops.append(self.block(name))
            elif name.text == "multi_shape_op":
                raise self.error("multi_shape_op blocks are not supported by infer-kit", name,
                                 hint="remove the block; infer-kit handles aipp_op only")
            else:
                hint = "AIPP fields go inside an 'aipp_op { ... }' block" if name.text in FIELD_BY_NAME else None
                raise self.error(f'Message type "domi.InsertNewOps" has no field named "{name.text}"', name, hint=hint)
            while self.accept(",") or self.accept(";"):
                pass
        return AippConfig(tuple(ops), self.where)

    def block(self, start: Token) -> AippOp:
        self.accept(":")
        opener = self.tok
        if not (opener.kind == "symbol" and opener.text in _CLOSE):
            raise self.error(f'Expected "{{" after aipp_op, found "{opener.text or "end of file"}"')
        self.advance()
        close = _CLOSE[opener.text]
        values: dict[str, Any] = {}
        lines: dict[str, int] = {}
        while not self.accept(close):
            if self.tok.kind == "eof":
                raise self.error(f'Expected "{close}" to close the aipp_op block opened at line {start.line}')
            name = self.tok
            if name.kind != "ident":
                raise self.error(f'Expected identifier, found "{name.text}"')
            self.advance()
            spec = FIELD_BY_NAME.get(name.text)
            if spec is None:
                close_names = difflib.get_close_matches(name.text, list(FIELD_BY_NAME), n=1)
                hint = f"did you mean {close_names[0]}?" if close_names else None
                raise self.error(f'Message type "domi.AippOpParams" has no field named "{name.text}"', name, hint)
            if not self.accept(":"):
                raise self.error(f'Expected ":", found "{self.tok.text or "end of file"}"')
            items = self.values(spec)
            if name.text in values or len(items) > 1:
                raise self.duplicate(spec, name, lines.get(name.text))
            values[name.text] = items[0]
            lines[name.text] = name.line
            while self.accept(",") or self.accept(";"):
                pass
        return AippOp(values, start.line, lines)

    def duplicate(self, spec: FieldSpec, token: Token, first_line: int | None) -> AippConfigError:
        first = f" (first given at line {first_line})" if first_line else ""
        if spec.repeated:
            return self.error(f"The parameter {spec.name} can not be configed repeatedly{first}", token,
                              hint="give each AIPP parameter once per aipp_op block")
        return self.error(f'Non-repeated field "{spec.name}" is specified multiple times{first}', token,
                          hint="give each AIPP parameter once per aipp_op block")

    def values(self, spec: FieldSpec) -> list[Any]:
        if self.tok.kind == "symbol" and self.tok.text == "[":
            if not spec.repeated:
                raise self.error(f'Field "{spec.name}" is not repeated: a list value is not allowed')
            self.advance()
            items = [self.scalar(spec)]
            while self.accept(","):
                items.append(self.scalar(spec))
            self.expect("]")
            return items
        return [self.scalar(spec)]

    def scalar(self, spec: FieldSpec) -> Any:
        negative = False
        start = self.tok
        if self.accept("-"):
            negative = True
        token = self.advance()
        if spec.kind in ("int32", "uint32"):
            return self.integer(spec, token, negative, start)
        if spec.kind == "float":
            return self.floating(spec, token, negative)
        if negative:
            raise self.error(f'Expected {_kind_name(spec)} for field "{spec.name}", found "-"', start)
        if spec.kind == "bool":
            return self.boolean(spec, token)
        if spec.kind == "enum":
            return self.enum(spec, token)
        if token.kind != "string":
            raise self.error(f'Expected string for field "{spec.name}", found "{token.text}"', token)
        return _unquote(token.text)

    def integer(self, spec: FieldSpec, token: Token, negative: bool, start: Token) -> int:
        text = ("-" if negative else "") + token.text
        if token.kind != "number" or _is_float_literal(token.text):
            hint = None
            if token.kind == "number" and spec.name.startswith("mean_chn_"):
                n = spec.name[-1]
                hint = f"{spec.name} is an integer field; put a fractional mean in min_chn_{n} (a float field)"
            elif token.kind == "number":
                hint = f"{spec.name} is an integer field"
            raise self.error(f"Expected integer, got: {text or 'end of file'}", start, hint=hint)
        value = _int_literal(token.text)
        if value is None:
            raise self.error(f"Expected integer, got: {text}", start)
        value = -value if negative else value
        low, high = UINT32_RANGE if spec.kind == "uint32" else INT32_RANGE
        if not low <= value <= high:
            raise self.error(f'Integer out of range ({text}) for {spec.kind} field "{spec.name}"', start)
        return value

    def floating(self, spec: FieldSpec, token: Token, negative: bool) -> float:
        if token.kind == "number":
            text = token.text.rstrip("fF")
            value = float(_int_literal(text)) if text.lower().startswith("0x") else float(text)
        elif token.kind == "ident" and token.text.lower() in _FLOAT_WORDS:
            value = _FLOAT_WORDS[token.text.lower()]
        else:
            raise self.error(f'Expected double, got: {token.text or "end of file"}', token)
        return -value if negative else value

    def boolean(self, spec: FieldSpec, token: Token) -> bool:
        if token.kind == "ident" and token.text in _BOOL_WORDS:
            return _BOOL_WORDS[token.text]
        if token.kind == "number" and token.text in ("0", "1"):
            return token.text == "1"
        raise self.error(f'Invalid value for boolean field "{spec.name}". Value: "{token.text}"', token,
                         hint="use true or false")

    def enum(self, spec: FieldSpec, token: Token) -> str:
        names = ENUMS[spec.name]
        if token.kind == "ident" and token.text in names:
            return token.text
        if token.kind == "number" and not _is_float_literal(token.text):
            number = _int_literal(token.text)
            if number is not None and 0 <= number < len(names):
                return names[number]
        close = difflib.get_close_matches(token.text, list(names), n=1)
        hint = f"did you mean {close[0]}?" if close else f"use one of {', '.join(names[1:])}"
        raise self.error(f'Unknown enumeration value of "{token.text}" for field "{spec.name}"', token, hint=hint)


def _kind_name(spec: FieldSpec) -> str:
    return {"bool": "boolean", "enum": "enum value", "string": "string"}.get(spec.kind, spec.kind)


def _is_float_literal(text: str) -> bool:
    if text.lower().startswith("0x"):
        return False
    return any(c in text for c in ".eEfF")


def _int_literal(text: str) -> int | None:
    try:
        if text.lower().startswith("0x"):
            return int(text, 16)
        if len(text) > 1 and text.startswith("0"):
            return int(text, 8)  # protobuf reads a leading zero as octal
        return int(text, 10)
    except ValueError:
        return None


def _unquote(text: str) -> str:
    body = text[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body)


def parse_config(text: str, *, path: str | os.PathLike[str] | None = None) -> AippConfig:
    """Parse config text; errors name ``path`` (or ``<aipp config>``) and the line."""
    where = os.fspath(path) if path is not None else "<aipp config>"
    return _Parser(text, where).parse()


def read_config(path: str | os.PathLike[str]) -> AippConfig:
    """Read and parse an AIPP config file (any suffix, as ATC)."""
    path = Path(path)
    return parse_config(read_text(path, what="AIPP config"), path=path)
