"""The one exception users see: a single line naming the problem and the fix."""


class PipelineError(Exception):
    """A refusal or failure explained in one line; the CLI prints it and exits non-zero.

    Raise it for anything a user can act on (bad input, missing engine, chain unreachable).
    Never put a secret in the message.
    """

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))
