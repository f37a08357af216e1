"""The layers stay one-way: the engine never loads the UI, the UI loads the heavy engine only when used.

`lint-imports` (in `make test`) checks the import graph statically; these check what really loads.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from helpers import ROOT, imported_after


def test_the_app_imports_without_the_heavy_engine():
    # The app must open in well under 2 s: torch and friends load on a worker when a run starts.
    modules = imported_after("import screens.app")
    assert not modules & {"torch", "transformers", "peft", "datasets"}


def test_the_engine_never_imports_textual():
    modules = imported_after("import studio.config, studio.events, studio.runs, studio.cli")
    assert "textual" not in modules and not any(m.startswith("screens") for m in modules)


def test_a_headless_command_does_not_load_the_app():
    modules = imported_after("import screens.launcher")
    assert "textual" not in modules and "screens.app" not in modules


def test_the_module_level_contract_counts_import_time_imports_only(tmp_path):
    ui = tmp_path / "fakeui"
    ui.mkdir()
    (ui / "__init__.py").write_text("")
    (ui / "deferred.py").write_text("def train():\n    import heavy\n")
    (ui / "eager.py").write_text("import fakeui.deferred\nfrom fakeui import through\n")
    (ui / "through.py").write_text("class Pane:\n    import heavy\n")  # a class body runs at import time
    config = tmp_path / "contracts.toml"
    config.write_text('''
[tool.importlinter]
root_packages = ["fakeui"]
include_external_packages = true
contract_types = ["module_level_forbidden: tools.import_contracts.ModuleLevelForbiddenContract"]

[[tool.importlinter.contracts]]
name = "no heavy at import time"
type = "module_level_forbidden"
source_modules = ["fakeui.eager", "fakeui.deferred"]
forbidden_modules = ["heavy"]
''')
    lint = subprocess.run([str(Path(sys.executable).parent / "lint-imports"), str(config), "--no-cache"],
                          cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True)
    assert lint.returncode == 1, lint.stdout + lint.stderr
    assert "fakeui.eager is not allowed to import heavy" in lint.stdout  # through the class body
    assert "fakeui.eager -> fakeui.through" in lint.stdout and "fakeui.through -> heavy" in lint.stdout
    assert "fakeui.deferred is not allowed" not in lint.stdout  # its import waits for a call
