"""The errors a user can meet. Each carries its exit code.

Raise these with a one-line message that says what is wrong and how to fix it; the CLI prints
``cnnvsdnn: error: <message>`` on stderr and exits with ``exit_code``, without a traceback
(``HYDRA_FULL_ERROR=1`` shows it). Exit codes: 2 bad input (config, arguments, missing or
corrupt data: nothing was done), 1 a failure during work, 128 + N a signal N (130 SIGINT,
143 SIGTERM).
"""


class CnnvsdnnError(Exception):
    """A failure during work (exit code 1)."""

    exit_code = 1


class ConfigError(CnnvsdnnError):
    """A bad config value or command-line argument (exit code 2)."""

    exit_code = 2


class DataError(CnnvsdnnError):
    """A dataset that is missing, corrupt or cannot be fetched (exit code 2)."""

    exit_code = 2


class Interrupted(CnnvsdnnError):
    """Stopped by a signal after saving what can be resumed (exit code 128 + signal)."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code
