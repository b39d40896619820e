"""Every sub-system test, again, on the mirror of production (markers travel with the tests)."""

from ..subsystem.test_balances import *  # noqa: F403
from ..subsystem.test_council import *  # noqa: F403
from ..subsystem.test_notes import *  # noqa: F403
from ..subsystem.test_sudo import *  # noqa: F403
