"""The compare view: runs marked in the runs list, their curves overlaid on one chart, their final
figures, what their configs differ in, and the same prompt's answers side by side at a chosen step.
The runs are run folders written here (synthetic events.jsonl, no training)."""

from __future__ import annotations

import os
from pathlib import Path

from helpers import at_both_sizes, record_notifications, settle, wait_for, write_run

from screens.app import StudioApp
from screens.compare import CompareScreen
from screens.runs_list import RunsList
from screens.widgets.compare_chart import CompareChart
from studio.compare import config_differences, load_run, table_rows
from studio.events import JsonlWriter, make_event

SIZE = (120, 40)


def three_runs(root: Path) -> list[Path]:
    """Three learning rates: the fastest stopped (killed) at step 6; two were judged; the list shows them in this order."""
    runs = [write_run(root / "lr-1e-4", steps=9, max_steps=9, final="finished", slope=0.1, judged=True,
                      overrides=("train.learning_rate=1e-4",)),
            write_run(root / "lr-3e-4", steps=9, max_steps=9, final="finished", slope=0.2,
                      overrides=("train.learning_rate=3e-4",)),
            write_run(root / "lr-1e-3", steps=6, max_steps=9, final=None, slope=0.3, judged=True,
                      overrides=("train.learning_rate=1e-3", "lora.r=8"))]
    for age, run_dir in enumerate(runs):  # the runs list shows the newest first: a fixed order
        os.utime(run_dir, (1_700_000_000 - age, 1_700_000_000 - age))
    return runs


async def open_compare(pilot, names: list[str]) -> CompareScreen:
    """Open the runs list, mark `names` (space), compare them (c), and wait for the runs to be read."""
    await pilot.press("o")
    runs_list = pilot.app.screen
    table = runs_list.query_one("#runs-table")
    await wait_for(pilot, lambda: table.row_count == 3, what="the runs")
    order = [table.get_row_at(i)[1] for i in range(table.row_count)]
    for name in names:
        table.move_cursor(row=order.index(name))
        await pilot.press("space")
    await pilot.press("c")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, CompareScreen) and pilot.app.screen.runs,
                   what="the compare view")
    await pilot.pause()
    return pilot.app.screen


def table_of(screen: CompareScreen, selector: str) -> dict[str, list[str]]:
    """A table the view shows: its first column's label -> the runs' cells."""
    columns = [[str(cell) for cell in column.cells] for column in screen.query_one(selector).content.columns]
    return {label: [column[row] for column in columns[1:]] for row, label in enumerate(columns[0])}


def shown_answer(screen: CompareScreen, index: int) -> str:
    return str(screen.query_one(f"#compare-answer-text-{index}").content)


async def test_marked_runs_compare_with_their_curves_figures_config_and_answers(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_RUNS", str(tmp_path))
    paths = three_runs(tmp_path)
    app = StudioApp()
    async with app.run_test(size=SIZE) as pilot:
        screen = await open_compare(pilot, ["lr-1e-4", "lr-1e-3"])
        runs_list = app.screen_stack[-2]
        assert isinstance(runs_list, RunsList) and "2 marked" in str(runs_list.query_one("#runs-title").content)
        records = [load_run(paths[0]), load_run(paths[2])]

        # One chart: each run its colour, each with its train, held-out, style and judge curves.
        chart = screen.query_one(CompareChart)
        assert len({colour for colour, _ in chart.runs}) == 2
        for (_, curves), record in zip(chart.runs, records):
            assert set(curves) == {"train", "held-out", "style", "judge"}
            assert all(curves[name] == record.curve(name) for name in curves)
        await pilot.press("x")
        assert chart.x_label == "tokens seen" and chart.runs[1][1]["train"] == records[1].curve("train", "tokens")
        assert chart.runs[1][1]["train"][-1][0] == 6000  # six steps of a second at 1000 tokens/s
        assert "by tokens seen" in str(screen.query_one("#compare-title").content)
        await pilot.press("x")
        assert chart.x_label == "step"

        # The final figures are the engine's, the config shows only what differs.
        figures = table_of(screen, "#compare-figures")
        header, rows = table_rows(records)
        assert figures == {figure: [row[j] for row in rows] for j, figure in enumerate(header) if j}
        assert figures["held-out loss"] == ["2.550", "2.100"] and figures["judge yoda AUC"] == ["1.000", "1.000"]
        config = table_of(screen, "#compare-config")
        assert config == {key: [str(v) for v in values] for key, values in config_differences(records).items()}
        assert list(config) == ["lora.r", "train.learning_rate"]

        # The same prompt side by side: at the latest step, then an earlier one, the other prompt, sampled.
        assert [shown_answer(screen, i) for i in range(2)] == ["answer 0 at 9", "answer 0 at 6"]
        assert screen.query_one("#compare-answer-1").border_subtitle == "from step 6"  # it stopped at 6
        await pilot.press("left_square_bracket")
        assert screen.shown_step() == 6 and [shown_answer(screen, i) for i in range(2)] == ["answer 0 at 6"] * 2
        await pilot.press("greater_than_sign")
        assert [shown_answer(screen, i) for i in range(2)] == ["answer 1 at 6"] * 2
        await pilot.press("g")
        assert shown_answer(screen, 0) == "answer 1 at 6 (sampled)"
        await pilot.press("right_square_bracket")
        assert screen.shown_step() == 9

        await pilot.press("escape")  # back to the runs list, its marks kept
        assert app.screen is runs_list and len(runs_list.marked) == 2
        assert str(runs_list.query_one("#runs-table").get_row_at(0)[0]) == "✓"


async def test_e_exports_the_curves_as_shown(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    paths = three_runs(tmp_path / "runs")
    app = StudioApp()
    toasts = record_notifications(app)
    async with app.run_test(size=SIZE) as pilot:
        app.push_screen(CompareScreen(paths[:2]))
        await wait_for(pilot, lambda: app.screen.runs, what="the runs")
        await pilot.press("x", "e")
        await wait_for(pilot, lambda: list((tmp_path / "studio-exports").glob("compare-tokens-*.png")), what="the PNG")
        png = next((tmp_path / "studio-exports").glob("compare-tokens-*.png"))
        await wait_for(pilot, lambda: any(str(png) in text for text in toasts), what="the toast")
        assert png.stat().st_size > 10_000


async def test_a_run_folder_gone_says_so_in_place_of_the_chart(tmp_path):
    kept = write_run(tmp_path / "kept", steps=3, final="finished")
    app = StudioApp()
    toasts = record_notifications(app)
    async with app.run_test(size=SIZE) as pilot:
        app.push_screen(CompareScreen([kept, tmp_path / "deleted"]))
        await wait_for(pilot, lambda: toasts, what="the error")
        assert "not a run directory" in toasts[0]
        assert app.screen.query_one(CompareChart).placeholder.startswith("cannot compare:")


async def test_compare_asks_for_two_marked_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_RUNS", str(tmp_path))
    three_runs(tmp_path)
    app = StudioApp()
    toasts = record_notifications(app)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("o")
        table = app.screen.query_one("#runs-table")
        await wait_for(pilot, lambda: table.row_count == 3, what="the runs")
        await pilot.press("space", "space", "space")  # marked, unmarked, marked again: one run
        await pilot.press("c")
        assert isinstance(app.screen, RunsList) and "(1 marked)" in toasts[-1]


async def test_a_resumed_run_compares_with_each_step_once(tmp_path):
    resumed = write_run(tmp_path / "resumed", steps=6, final=None)  # killed at 6, resumed from step 3
    writer = JsonlWriter(resumed / "events.jsonl")
    writer(make_event("resume", 3, from_step=3))
    for step in range(4, 7):
        writer(make_event("step", step, loss=1.0 / step, tokens_per_s=2000.0, step_time_s=1.0))
    writer(make_event("eval", 6, eval_loss=1.5, perplexity=4.5, style_loss=2.0))
    writer(make_event("status", 6, state="finished", reason="finished"))
    writer.close()
    other = write_run(tmp_path / "other", steps=6, final="finished")
    app = StudioApp()
    async with app.run_test(size=SIZE) as pilot:
        app.push_screen(CompareScreen([resumed, other]))
        await wait_for(pilot, lambda: app.screen.runs, what="the runs")
        await pilot.pause()
        train = app.screen.query_one(CompareChart).runs[0][1]["train"]
        assert [x for x, _ in train] == [1, 2, 3, 4, 5, 6] and train[-1][1] == 1.0 / 6
        figures = table_of(app.screen, "#compare-figures")
        assert figures["held-out loss"][0] == "1.500" and figures["status"][0] == "finished"


@at_both_sizes
def test_compare_view(snap_compare, tmp_path, size):
    paths = three_runs(tmp_path)

    async def compared(pilot):
        pilot.app.push_screen(CompareScreen(paths))
        await settle(pilot, lambda: bool(pilot.app.screen.runs))  # the tables measured, the layout done

    assert snap_compare(StudioApp(), terminal_size=size, run_before=compared)


@at_both_sizes
def test_compare_view_by_tokens_at_an_earlier_step(snap_compare, tmp_path, size):
    paths = three_runs(tmp_path)

    async def compared(pilot):
        pilot.app.push_screen(CompareScreen(paths))
        await settle(pilot, lambda: bool(pilot.app.screen.runs))
        await pilot.press("x", "v", "left_square_bracket", "greater_than_sign", "end")  # "end": the answers, when scrolled
        await settle(pilot)

    assert snap_compare(StudioApp(), terminal_size=size, run_before=compared)
