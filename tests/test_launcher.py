"""The `studio` command (screens.launcher): the app for `studio`/`studio watch`, the engine for the rest."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version


def launch(*args: str, module: str = "screens.launcher") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=60)


def test_version_is_the_installed_package_version():
    done = launch("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"studio {version('finetune-studio')}"


def test_help_lists_the_app_and_the_headless_commands():
    done = launch("--help")
    assert done.returncode == 0
    for command in ("train", "resume", "runs", "watch", "judge", "eval"):
        assert command in done.stdout


def test_a_headless_subcommand_goes_to_the_engine(tmp_path):
    done = launch("runs", "--root", str(tmp_path))
    assert done.returncode == 0 and f"no runs in {tmp_path}/ yet" in done.stdout


def test_the_engine_alone_sends_the_app_commands_to_studio(tmp_path):
    done = launch("watch", str(tmp_path), module="studio.cli")
    assert done.returncode == 2 and "`studio watch RUN_DIR`" in done.stderr
