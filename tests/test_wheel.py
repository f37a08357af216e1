"""The wheel works outside the checkout: its `studio` command trains on the demo and opens the app.

Built from a copy of the sources (the checkout gets no build/ folder), installed with --no-deps into
a fresh venv that sees this venv's packages through a .pth file: no second torch, no download.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import time
from importlib.metadata import version
from pathlib import Path

from helpers import ROOT

SHIPPED = ("pyproject.toml", "README.md", "studio", "screens", "assets")

# Opens the installed app headless, shows the help screen, and says where the app and its styles came from.
OPEN_THE_APP = """
import asyncio, screens, studio.paths
from screens.app import StudioApp
from screens.widgets.dialogs import HelpScreen

async def main():
    app = StudioApp()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        form_width = app.query_one("#config-form").styles.width  # set by assets/studio.tcss
        await pilot.press("escape", "q")
    print(screens.__file__, studio.paths.ASSETS, form_width, sep="\\n")

asyncio.run(main())
"""


def run(*args, cwd: Path, timeout: int = 120) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": "", "STUDIO_RUNS": str(cwd / "runs")}
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{args}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_the_wheel_installs_and_runs_outside_the_checkout(tmp_path, tiny_model_dir):
    started = time.monotonic()
    sources = tmp_path / "sources"
    sources.mkdir()
    for name in SHIPPED:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, sources / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(ROOT / name, sources / name)
    run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", tmp_path / "dist",
        sources, cwd=tmp_path)
    wheel = next((tmp_path / "dist").glob("finetune_studio-*.whl"))

    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path)
    site = Path(sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)}))
    (site / "shared.pth").write_text(sysconfig.get_path("purelib") + "\n")  # torch & co., already installed
    run(sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install", "-q", "--no-deps", wheel,
        cwd=tmp_path)

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    studio = venv / "bin" / "studio"
    assert run(studio, "--version", cwd=outside).strip() == f"studio {version('finetune-studio')}"

    trained = run(studio, "train", "--set", "train.max_steps=2", "--set", f"model.name=\"{tiny_model_dir}\"",
                  "--set", "train.eval_every=0", "--set", "train.sample_every=0", "--set", "train.save_every=0",
                  "--run-dir", outside / "runs" / "wheel", cwd=outside)
    assert "finished" in trained
    assert (outside / "runs" / "wheel" / "adapter" / "adapter_config.json").exists()

    (outside / "open_the_app.py").write_text(OPEN_THE_APP)
    app_file, assets, form_width = run(venv / "bin" / "python", "open_the_app.py", cwd=outside).split()
    assert Path(app_file).is_relative_to(site) and Path(assets).is_relative_to(site)  # the wheel's, not the checkout's
    assert form_width == "36"
    print(f"wheel test: {time.monotonic() - started:.1f} s")
