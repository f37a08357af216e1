"""Comparing runs from their directories: curves, the table of final figures, the config differences."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from studio.compare import config_differences, load_run, plot_curves, table_rows
from studio.config import RunConfig


def write_run(path: Path, lr: float, losses: list[float], eval_losses: dict[int, float], rank: int = 16) -> Path:
    path.mkdir(parents=True)
    RunConfig(name=path.name).with_overrides([f"train.learning_rate={lr}", f"lora.r={rank}"]).save(
        path / "config.toml")
    events = [{"type": "step", "step": i, "time": 100.0 + i, "loss": loss, "tokens_per_s": 50.0 * i,
               "step_time_s": 1.0} for i, loss in enumerate(losses, start=1)]
    events += [{"type": "eval", "step": s, "time": 100.0 + s, "eval_loss": v, "perplexity": 2.0 ** v,
                "style_loss": v + 1} for s, v in eval_losses.items()]
    events += [{"type": "sample", "step": s, "time": 0, "prompt": "Q?", "response": f"answer at {s}", "mode": "greedy",
                "index": 0} for s in eval_losses]
    events.append({"type": "status", "step": len(losses), "time": 200.0, "state": "finished", "reason": ""})
    (path / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    return path


def three_runs(root: Path) -> list[Path]:
    return [write_run(root / "slow", 1e-4, [3.0, 2.9, 2.8], {0: 3.1, 3: 2.9}),
            write_run(root / "mid", 3e-4, [3.0, 2.5, 2.2], {0: 3.1, 3: 2.4}),
            write_run(root / "fast", 1e-3, [3.0, 2.0, 1.5, 1.2], {0: 3.1, 4: 1.9}, rank=8)]


def test_the_table_holds_each_runs_last_figures(tmp_path):
    runs = [load_run(p) for p in three_runs(tmp_path)]
    header, rows = table_rows(runs)
    table = {row[0]: dict(zip(header, row)) for row in rows}
    assert table["fast"]["steps"] == "4" and table["fast"]["held-out loss"] == "1.900"
    assert table["mid"]["style loss"] == "3.400" and table["slow"]["status"] == "finished"
    assert table["fast"]["tokens/s"] == "125"  # the median of 50, 100, 150, 200
    assert [x for x, _ in runs[2].curve("train")] == [1, 2, 3, 4]
    assert runs[2].curve("train", x="tokens")[-1][0] == 500.0  # 50 + 100 + 150 + 200 tokens seen
    assert runs[1].sample(step=3, index=0)["response"] == "answer at 3"
    assert runs[1].sample(step=2, index=0)["response"] == "answer at 0" and runs[1].sample(step=2, index=1) is None


def test_config_differences_name_exactly_the_changed_keys(tmp_path):
    runs = [load_run(p) for p in three_runs(tmp_path)]
    assert config_differences(runs) == {"lora.r": [16, 16, 8], "train.learning_rate": [1e-4, 3e-4, 1e-3]}


def test_studio_compare_prints_the_table_and_writes_the_curves(tmp_path):
    paths = three_runs(tmp_path)
    png = tmp_path / "curves.png"
    done = subprocess.run([sys.executable, "-m", "studio.cli", "compare", *map(str, paths), "--png", str(png),
                           "--x", "tokens"], capture_output=True, text=True, env={"COLUMNS": "200", "PATH": ""})
    assert done.returncode == 0, done.stderr
    assert "train.learning_rate" in done.stdout and "lora.r" in done.stdout and "1.900" in done.stdout
    assert png.stat().st_size > 10_000


def test_the_plot_draws_every_run_on_every_curve(tmp_path):
    runs = [load_run(p) for p in three_runs(tmp_path)]
    out = plot_curves(runs, tmp_path / "c.png")
    assert out.exists()
    assert all(set(run.steps) == {"train", "held-out", "style"} for run in runs)
