"""Validated TOML settings files: typed field access whose errors name the file, line and field.

Shared by every settings file the pipeline reads (environments, release plans) so a mistake in
any of them reads the same: `<file>:<line>: <field>: <problem and fix>`. Fields are dotted paths;
the n-th table of an array of tables (`[[milestones]]`) is `milestones[n]`, counting from 1 as
people do.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from pipeline.errors import PipelineError

# A wait longer than an hour is a typo (or 1e308), not a setting: `track` would never return.
MAX_SECONDS = 3600

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_ASSIGN = re.compile(r"^\s*([A-Za-z0-9_.\"' -]+?)\s*=")
_INDEX = re.compile(r"\[(\d+)\]")


def parse(path: Path, text: str) -> tuple[TomlSource, dict[str, Any]]:
    """The file's data, and a source that locates its fields; bad syntax is one line."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PipelineError(f"{path}: {exc}: fix the TOML syntax") from None
    return TomlSource(path, text), data


def join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _key_path(text: str) -> tuple[str, ...]:
    return tuple(part.strip().strip("\"'") for part in text.split("."))


def _field_path(field: str) -> tuple[str, ...]:
    """`milestones[2].stage` -> ("milestones", "[2]", "stage")."""
    return _key_path(_INDEX.sub(r".[\1]", field))


class TomlSource:
    """One settings file being validated: typed field access with located errors."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.lines = text.splitlines()

    def line_of(self, field: str) -> int | None:
        """Best-effort line of `field` (a dotted path): the deepest header or key leading to it,
        else the first one inside it (a table defined only through its subtables)."""
        target = _field_path(field)
        best, best_depth, inside = None, 0, None
        header: tuple[str, ...] = ()
        counts: dict[tuple[str, ...], int] = {}
        for number, line in enumerate(self.lines, start=1):
            if match := _HEADER.match(line):
                header = key = _key_path(match[2])
                if match[1] == "[[":  # one more table of an array: address it by its number
                    counts[key] = counts.get(key, 0) + 1
                    header = key = (*key, f"[{counts[key]}]")
            elif match := _ASSIGN.match(line):
                key = header + _key_path(match[1])
            else:
                continue
            if key == target[: len(key)] and len(key) > best_depth:
                best, best_depth = number, len(key)
            elif inside is None and key[: len(target)] == target:
                inside = number
        return best or inside

    def error(self, field: str, problem: str) -> PipelineError:
        line = self.line_of(field) if field else None
        where = f"{self.path}:{line}" if line else str(self.path)
        return PipelineError(f"{where}: {field or 'top level'}: {problem}")

    def check_keys(self, table: dict[str, Any], field: str, allowed: tuple[str, ...]) -> None:
        for key in table:
            if key not in allowed:
                raise self.error(
                    join(field, key), f"unknown key: expected one of {', '.join(allowed)}"
                )

    def wrong_type(self, field: str, value: Any, what: str) -> PipelineError:
        shown = type(value).__name__ if isinstance(value, dict | list) else repr(value)
        return self.error(field, f"must be {what}, not {shown}")

    def table(self, data: dict[str, Any], key: str, *, prefix: str = "") -> dict[str, Any] | None:
        value = data.get(key)
        if value is not None and not isinstance(value, dict):
            raise self.wrong_type(join(prefix, key), value, "a table")
        return value

    def string(self, data: dict[str, Any], key: str, *, prefix: str = "") -> str | None:
        value = data.get(key)
        if value is not None and not isinstance(value, str):
            raise self.wrong_type(join(prefix, key), value, "a string")
        return value

    def strings(
        self, data: dict[str, Any], key: str, *, prefix: str = ""
    ) -> tuple[str, ...] | None:
        """A list of non-empty strings, or None when absent."""
        value = data.get(key)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise self.wrong_type(join(prefix, key), value, "a list of strings")
        if not all(item.strip() for item in value):
            raise self.error(join(prefix, key), "has an empty string: remove it or fill it in")
        return tuple(value)

    def integer(
        self,
        data: dict[str, Any],
        key: str,
        *,
        prefix: str = "",
        low: int = 0,
        high: int | None = None,
    ) -> int | None:
        value = data.get(key)
        if value is None:
            return None
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.wrong_type(join(prefix, key), value, "an integer")
        if value < low or (high is not None and value > high):
            bounds = f"{low}-{high}" if high is not None else f">= {low}"
            raise self.error(join(prefix, key), f"{value} is out of range ({bounds})")
        return value

    def boolean(self, data: dict[str, Any], key: str, *, default: bool, prefix: str = "") -> bool:
        value = data.get(key, default)
        if not isinstance(value, bool):
            raise self.wrong_type(join(prefix, key), value, "true or false")
        return value

    def seconds(self, data: dict[str, Any], key: str, *, default: float, prefix: str = "") -> float:
        value = data.get(key, default)
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise self.wrong_type(join(prefix, key), value, "a number of seconds")
        if not 0 < value <= MAX_SECONDS:  # also refuses TOML's nan
            raise self.error(
                join(prefix, key),
                f"{value} is out of range: more than 0 and at most {MAX_SECONDS} (an hour)",
            )
        return float(value)
