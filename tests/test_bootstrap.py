"""scripts/python-up.sh in a fresh checkout: a .venv of its own that takes the dependencies from
the machine's shared environment (installed by the first checkout, reused by the next ones)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def python_up(checkout: Path) -> str:
    done = subprocess.run(
        ["bash", "scripts/python-up.sh"],
        cwd=checkout,
        capture_output=True,
        text=True,
        timeout=900,  # the first run on a machine installs the dependencies from the registry
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_fresh_checkout_gets_a_venv_of_its_own_over_the_shared_dependencies(
    tmp_path: Path,
) -> None:
    checkout = tmp_path / "clone"
    (checkout / "scripts").mkdir(parents=True)
    shutil.copy(REPO / "scripts/python-up.sh", checkout / "scripts")
    shutil.copy(REPO / "pyproject.toml", checkout)
    shutil.copytree(
        REPO / "pipeline", checkout / "pipeline", ignore=shutil.ignore_patterns("*.pyc")
    )

    said = python_up(checkout)
    assert "python-up: .venv ready in" in said
    shared = said.rsplit("(dependencies from ", 1)[1].split(")")[0]
    venv = checkout / ".venv"
    where = subprocess.run(
        [
            venv / "bin/python",
            "-c",
            "import pipeline, pytest; print(pipeline.__file__, pytest.__file__)",
        ],
        cwd=tmp_path,  # not the checkout: its pipeline/ must come from the install
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert where == [str(checkout / "pipeline/__init__.py"), where[1]]
    assert where[1].startswith(shared)  # the dependency lives once on the machine
    assert not list(venv.glob("lib/python*/site-packages/pytest"))
    for tool in ("pytest", "invoke", "mypy", "ruff", "runtime-pipeline"):
        shown = subprocess.run([venv / "bin" / tool, "--help"], capture_output=True, text=True)
        assert shown.returncode == 0, (tool, shown.stderr)
    # pip in the checkout's venv installs into it, and leaves the shared environment alone
    listed = subprocess.run(
        [venv / "bin/pip", "show", "runtime-pipeline"], capture_output=True, text=True, check=True
    ).stdout
    assert f"Editable project location: {checkout}" in listed

    assert python_up(checkout) == "python-up: .venv up to date\n"
    (venv / "bin/pytest").unlink()  # a broken venv is made again
    assert "python-up: .venv ready in" in python_up(checkout)
    assert (venv / "bin/pytest").is_file()
