"""Tables of name rules: a source's parameter names -> the target model's, readable and usable both ways.

A rule is a pair of patterns, ``("s{S}.b{B}.dwise.weight", "blocks.{S-1}.{B-1}.conv_dw.weight")``.
A placeholder matches one dotted piece (or, for ``{rest}``, several) and carries its value to the
other side; an integer placeholder may carry an offset (``{S-1}``: one less than ``S``). The first
rule whose source pattern matches a key names its target; :meth:`Rules.source_of` runs the
table backwards, so an error about a target key nobody filled can name the source key that
should have filled it.

Placeholders: ``{i} {j} {k} {n} {S} {B}`` an integer; ``{bn}`` a BatchNorm field (weight, bias,
running_mean, running_var, num_batches_tracked); ``{wb}`` weight or bias; ``{rest}`` any dotted
name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

BN_FIELDS = "weight|bias|running_mean|running_var|num_batches_tracked"
_KINDS = {"bn": BN_FIELDS, "wb": "weight|bias", "rest": r".+?"}
_INTEGER = r"\d+"
_PLACEHOLDER = re.compile(r"\{([A-Za-z]+)([+-]\d+)?\}")


@dataclass(frozen=True)
class _Pattern:
    text: str
    regex: re.Pattern[str]
    offsets: dict[str, int]

    @classmethod
    def parse(cls, text: str) -> _Pattern:
        parts, offsets, last = [], {}, 0
        for match in _PLACEHOLDER.finditer(text):
            name, offset = match.group(1), int(match.group(2) or 0)
            if name in offsets:
                raise ValueError(f"placeholder {{{name}}} appears twice in {text!r}")
            offsets[name] = offset
            parts.append(re.escape(text[last:match.start()]))
            parts.append(f"(?P<{name}>{_KINDS.get(name, _INTEGER)})")
            last = match.end()
        parts.append(re.escape(text[last:]))
        return cls(text, re.compile("".join(parts) + r"\Z"), offsets)

    def match(self, key: str) -> dict[str, str] | None:
        """The placeholder values of ``key`` (integers with this pattern's offsets undone)."""
        found = self.regex.match(key)
        if found is None:
            return None
        values = found.groupdict()
        for name, offset in self.offsets.items():
            if name not in _KINDS:
                number = int(values[name]) - offset
                if number < 0:
                    return None
                values[name] = str(number)
        return values

    def format(self, values: dict[str, str]) -> str:
        def fill(match: re.Match[str]) -> str:  # a placeholder the other side lacks (a merge index) reads "*"
            name, offset = match.group(1), int(match.group(2) or 0)
            if name not in values:
                return "*"
            if name in _KINDS:
                return values[name]
            number = int(values[name]) + offset
            if number < 0:
                raise _Negative(name)
            return str(number)

        return _PLACEHOLDER.sub(fill, self.text)


class _Negative(ValueError):
    """An offset made an index negative (``s0`` has no ``blocks.-1``): the rule does not apply."""


@dataclass(frozen=True)
class Rule:
    source: _Pattern
    target: _Pattern


class Rules:
    """An ordered table of ``(source pattern, target pattern)`` rules (see the module docstring)."""

    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        self.rules = []
        for source, target in pairs:
            rule = Rule(_Pattern.parse(source), _Pattern.parse(target))
            if not set(rule.target.offsets) <= set(rule.source.offsets):
                raise ValueError(f"rule {source!r} -> {target!r}: the target uses a placeholder the source lacks")
            self.rules.append(rule)

    def target_of(self, key: str) -> str | None:
        """The target name of a source key (None: no rule covers it)."""
        found = self.match(key)
        return found[0] if found else None

    def source_of(self, key: str) -> str | None:
        """The source name a target key comes from (None: no rule produces it)."""
        found = self.sources_of(key)
        return found[0] if found else None

    def sources_of(self, key: str) -> list[str]:
        """Every source name some rule maps onto target ``key`` (for a message when the tables overlap)."""
        found = []
        for rule in self.rules:
            name = _apply(rule.target, rule.source, key)
            if name is not None and name[0] not in found:
                found.append(name[0])
        return found

    def match(self, key: str) -> tuple[str, dict[str, str]] | None:
        """(target name, placeholder values) of a source key."""
        for rule in self.rules:
            found = _apply(rule.source, rule.target, key)
            if found is not None:
                return found
        return None

    def __iter__(self):  # for the README's tables and tests
        return iter((rule.source.text, rule.target.text) for rule in self.rules)


def _apply(matched: _Pattern, produced: _Pattern, key: str) -> tuple[str, dict[str, str]] | None:
    values = matched.match(key)
    if values is None:
        return None
    try:
        return produced.format(values), values
    except _Negative:
        return None
