"""invoke collections, one per area; each stays a thin layer over a `pipeline` module."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from invoke.exceptions import Exit

from pipeline.errors import PipelineError

F = TypeVar("F", bound=Callable[..., Any])


def friendly(func: F) -> F:
    """Turn a PipelineError into one `error: ...` line and a non-zero exit, no traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except PipelineError as exc:
            raise Exit(f"error: {exc}", code=exc.exit_code) from None

    return wrapper  # type: ignore[return-value]
