"""API keys: read from an environment variable or a file, and kept out of every printed or written text.

An `ApiKey` hides its value from repr/str/format and refuses to be pickled or JSON-encoded, so it cannot slip
into a log line, a stage's parameter hash, a cache row or a run folder by accident; only `reveal()` gives it,
and only the HTTP client calls that, to build the Authorization header.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import CotdistillError

DEFAULT_KEY_ENV = "OPENAI_API_KEY"


class ApiKey:
    __slots__ = ("_value",)

    def __init__(self, value: str):
        value = value.strip()
        if not value:
            raise CotdistillError("the API key is empty")
        self._value = value

    def reveal(self) -> str:
        return self._value

    def redact(self, text: str) -> str:
        """`text` with every occurrence of the key replaced, for error messages that quote a server."""
        return text.replace(self._value, "****")

    def __repr__(self) -> str:
        return "ApiKey(****)"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __reduce__(self):
        raise TypeError("an API key cannot be pickled")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ApiKey) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("ApiKey", self._value))


def load_api_key(env: str | None = DEFAULT_KEY_ENV, file: str | os.PathLike | None = None) -> ApiKey | None:
    """The key from `file` (its first non-blank line) if given, else from the environment variable `env`.

    Returns None when neither is set: local servers (vLLM, llama.cpp, transformers serve) need no key.
    A key is never accepted on the command line, where it would land in shell history and process lists.
    """
    if file is not None:
        path = Path(file).expanduser()
        try:
            lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        except OSError as e:
            raise CotdistillError(f"cannot read the API key file '{path}': {e.strerror}") from None
        if not lines:
            raise CotdistillError(f"the API key file '{path}' is empty")
        return ApiKey(lines[0])
    if env:
        value = os.environ.get(env, "").strip()
        if value:
            return ApiKey(value)
    return None
