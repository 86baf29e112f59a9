"""How this program was started, as a command the user can type again from another folder."""

from __future__ import annotations

import shlex
import shutil
import sys
from pathlib import Path

PROGRAM = "newsletter"


def command_name(argv0: str | None = None, executable: str | None = None) -> str:
    """The command that runs this program: ``newsletter`` if PATH finds this one, else a full path.

    Run as ``python -m newsletter`` (or from a test runner) it is that interpreter with ``-m``.
    """
    argv0 = sys.argv[0] if argv0 is None else argv0
    python = sys.executable if executable is None else executable
    script = Path(argv0)
    if not script.name.startswith(PROGRAM) or script.suffix == ".py" or not script.is_file():
        return f"{shlex.quote(python)} -m {PROGRAM}"
    script = script.resolve()
    found = shutil.which(PROGRAM)
    if found is not None and Path(found).resolve() == script:
        return PROGRAM
    return shlex.quote(str(script))
