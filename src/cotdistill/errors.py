"""User-facing errors: each carries a one-line message that names what is wrong and where."""


class CotdistillError(Exception):
    """An error caused by input the user can fix. The CLI prints it as one line and exits non-zero."""


class RecordError(CotdistillError):
    """A malformed record: the message names the file, the line and the field."""

    def __init__(self, path: str, line: int, field: str | None, problem: str):
        self.path, self.line, self.field, self.problem = path, line, field, problem
        where = f"{path}:{line}"
        super().__init__(f"{where}: field '{field}': {problem}" if field else f"{where}: {problem}")
