"""The workbench's table: every judged text with prompt A's and B's scores and the gap between them.

Rows are kept here (one per text, results filled in as they arrive) and the DataTable is rebuilt
in the chosen order; the pane feeds it a few batches a second, and rebuilding a thousand rows is
cheap next to that. The default order puts the largest disagreements first: those are the texts
that tell two judge prompts apart.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.widgets import DataTable

if TYPE_CHECKING:
    from studio.judge import JudgeItem, JudgeResult

TEXT_WIDTH = 80
# column key -> (header, width, largest first by default)
COLUMNS = {"gap": ("gap", 5, True), "A": ("A", 5, True), "B": ("B", 5, True), "group": ("group", 9, False),
           "text": ("text", TEXT_WIDTH, False)}
ORDER = ("gap", "A", "B", "group", "text")  # the columns on screen, and the order `s` cycles through


def score_cell(result: JudgeResult | None) -> str:
    if result is None:
        return "…"  # not judged yet
    if result.score is not None:
        return f"{result.score:g}"
    if result.error == "cancelled":
        return "–"
    return "err" if result.failed else "?"  # ?: an answer without a usable score


class JudgeTable(DataTable):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, id=id)
        self.items: list[JudgeItem] = []
        self.results: dict[str, list[JudgeResult | None]] = {}
        self._scales: dict[str, tuple[float, float]] = {}
        self.sort_column = "gap"
        self.sort_reverse = True

    def on_mount(self) -> None:
        for key in ORDER:
            _, width, _ = COLUMNS[key]
            self.add_column(self._header(key), key=key, width=width)

    def _header(self, key: str) -> Text:
        label = COLUMNS[key][0]
        if key == self.sort_column:
            label += " ▼" if self.sort_reverse else " ▲"
        return Text(label, style="bold")

    # -- the rows --------------------------------------------------------------------------------

    def start(self, items: list[JudgeItem], scales: dict[str, tuple[float, float]]) -> None:
        """A new run over these items, judged by prompts A and B, whose scales are given by label."""
        self.items = list(items)
        self._scales = dict(scales)
        self.results = {label: [None] * len(items) for label in scales}
        self._rebuild()

    def add_results(self, batch: list[tuple[str, int, JudgeResult]]) -> None:
        for label, index, result in batch:
            self.results[label][index] = result
        self._rebuild()

    def finished(self) -> list[JudgeResult]:
        return [r for results in self.results.values() for r in results if r is not None]

    def gap(self, index: int) -> float | None:
        """|A - B| with each score mapped onto 0-1 by its prompt's scale, so different scales compare."""
        normalised = []
        for label, (lo, hi) in self._scales.items():
            result = self.results[label][index]
            if result is None or result.score is None:
                return None
            normalised.append((result.score - lo) / (hi - lo))
        return abs(normalised[0] - normalised[1])

    def row_of(self, index: int) -> tuple[JudgeItem, dict[str, JudgeResult | None]]:
        return self.items[index], {label: results[index] for label, results in self.results.items()}

    # -- order -----------------------------------------------------------------------------------

    def _value(self, index: int, column: str):
        if column == "gap":
            return self.gap(index)
        if column in ("A", "B"):
            result = self.results[column][index]
            return None if result is None else result.score
        item = self.items[index]
        return item.group if column == "group" else item.text

    def _order(self) -> list[int]:
        """Rows with a value in the sort column, in order; then the rest, as they came (so they never
        crowd the top of the table while a run is going)."""
        values = {i: self._value(i, self.sort_column) for i in range(len(self.items))}
        known = sorted((i for i in values if values[i] is not None), key=values.__getitem__, reverse=self.sort_reverse)
        return known + [i for i in values if values[i] is None]

    def sort_by(self, column: str, reverse: bool | None = None) -> None:
        self.sort_column = column
        self.sort_reverse = COLUMNS[column][2] if reverse is None else reverse
        for key in ORDER:
            self.columns[key].label = self._header(key)  # type: ignore[index]
        self._rebuild()

    def next_sort(self) -> None:
        self.sort_by(ORDER[(ORDER.index(self.sort_column) + 1) % len(ORDER)])

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        """Click a header to sort by it; click it again to reverse."""
        event.stop()
        column = str(event.column_key.value)
        self.sort_by(column, not self.sort_reverse if column == self.sort_column else None)

    def _rebuild(self) -> None:
        # While the user browses the table, the row under the cursor stays there as rows move;
        # otherwise the cursor stays on the top row: the largest disagreement.
        browsing = self.has_focus and self.row_count
        current = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value if browsing else None
        self.clear()
        for index in self._order():
            gap = self.gap(index)
            item = self.items[index]
            text = " ".join(item.text.split())
            text = text if len(text) <= TEXT_WIDTH else text[:TEXT_WIDTH - 1] + "…"
            self.add_row("" if gap is None else f"{gap:.2f}",
                         *(score_cell(self.results[label][index]) for label in ("A", "B")),
                         item.group, text, key=str(index))
        if current is not None:
            self.move_cursor(row=self.get_row_index(current), animate=False)
