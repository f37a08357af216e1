"""The workbench's table: every judged text with prompt A's and B's scores, the gap between them,
and the human label the user gave it.

Rows are kept here (one per text, results filled in as they arrive) and the DataTable is rebuilt
in the chosen order; the pane feeds it a few batches a second, and rebuilding a thousand rows is
cheap next to that. The default order puts the largest disagreements first: those are the texts
that tell two judge prompts apart.

Labels: y/n says whether the highlighted text is in the target style; a digit gives it a score on
the label scale (the first of A's and B's scales that digits can type, 0 standing for 10). They are
saved at once in the pane's LabelStore (labels.jsonl), and the cursor moves on to the next row.
Where no label fits (no rows, a pairwise run, no digit scale) the keys do nothing here, so the
app's own keys (1-5: panes) still work.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable

from studio.judge.labels import YES_NO, LabelStore, scale_kind

if TYPE_CHECKING:
    from studio.judge import JudgeItem, JudgeResult

TEXT_WIDTH = 80
# column key -> (header, width, largest first by default)
COLUMNS = {"gap": ("gap", 5, True), "A": ("A", 5, True), "B": ("B", 5, True), "group": ("group", 9, False),
           "label": ("label", 5, True), "text": ("text", TEXT_WIDTH, False)}
ORDER = ("gap", "A", "B", "group", "label", "text")  # the columns on screen, and the order `s` cycles through


def label_scale(scales: list[tuple[float, float]]) -> tuple[int, int] | None:
    """The first scale whose every value one digit can type (0 standing for 10), e.g. 1-10 or 1-5; not yes/no."""
    for lo, hi in scales:
        if float(lo).is_integer() and float(hi).is_integer() and 0 <= lo and hi <= 10 and hi - lo >= 2 \
                and not (lo == 0 and hi == 10):
            return int(lo), int(hi)
    return None


def label_cell(label) -> str:
    if label is None:
        return ""
    if label.kind == YES_NO:
        return "yes" if label.value else "no"
    return f"{label.value:g}"


def score_cell(result: JudgeResult | None) -> str:
    if result is None:
        return "…"  # not judged yet
    if result.score is not None:
        return f"{result.score:g}"
    if result.error == "cancelled":
        return "–"
    return "err" if result.failed else "?"  # ?: an answer without a usable score


class JudgeTable(DataTable):
    BINDINGS = [
        Binding("y", "label(1)", "Yes", tooltip="Label the highlighted text: in the target style"),
        Binding("n", "label(0)", "No", tooltip="Label the highlighted text: not in the target style"),
        *(Binding(str(digit), f"label_score({digit})", "Score", key_display="0-9", show=digit == 1,
                  tooltip="Label the highlighted text with a score on the label scale (0: 10)")
          for digit in (1, 2, 3, 4, 5, 6, 7, 8, 9, 0)),
        Binding("delete,backspace", "unlabel", "Unlabel", key_display="del",
                tooltip="Remove the highlighted text's label"),
    ]

    class Labelled(Message):
        """A label was given or removed (and saved)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, id=id)
        self.items: list[JudgeItem] = []
        self.results: dict[str, list[JudgeResult | None]] = {}
        self._scales: dict[str, tuple[float, float]] = {}
        self.sort_column = "gap"
        self.sort_reverse = True
        self.labels: LabelStore | None = None  # set by the pane; None: labels cannot be kept (said there)
        self.pairwise = False  # rows are pairs of answers: nothing to label

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

    def start(self, items: list[JudgeItem], scales: dict[str, tuple[float, float]], pairwise: bool = False) -> None:
        """A new run over these items, judged by prompts A and B, whose scales are given by label."""
        self.items = list(items)
        self._scales = dict(scales)
        self.results = {label: [None] * len(items) for label in scales}
        self.pairwise = pairwise
        self._rebuild()
        self.refresh_bindings()

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

    def _label(self, index: int):
        return None if self.labels is None or self.pairwise else self.labels.get(self.items[index].text)

    def _value(self, index: int, column: str):
        if column == "gap":
            return self.gap(index)
        if column in ("A", "B"):
            result = self.results[column][index]
            return None if result is None else result.score
        if column == "label":
            label = self._label(index)
            return None if label is None else (label.kind != YES_NO, label.value)
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
            if item.text_b is not None:
                text += " ‖ " + " ".join(item.text_b.split())
            text = text if len(text) <= TEXT_WIDTH else text[:TEXT_WIDTH - 1] + "…"
            self.add_row("" if gap is None else f"{gap:.2f}",
                         *(score_cell(self.results[label][index]) for label in ("A", "B")),
                         item.group, label_cell(self._label(index)), text, key=str(index))
        if current is not None:
            self.move_cursor(row=self.get_row_index(current), animate=False)

    # -- human labels ----------------------------------------------------------------------------

    def label_scale(self) -> tuple[int, int] | None:
        return label_scale(list(self._scales.values()))

    def _digit_value(self, digit: int) -> int | None:
        scale = self.label_scale()
        if scale is None:
            return None
        value = 10 if digit == 0 and scale[1] == 10 else digit
        return value if scale[0] <= value <= scale[1] else None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("label", "label_score", "unlabel"):
            if self.labels is None or self.pairwise or not self.row_count:
                return False
            if action == "label_score":
                return self._digit_value(int(parameters[0])) is not None
        return True

    def _highlighted(self) -> int:
        return int(self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value)

    def _labelled(self) -> None:
        row = self.cursor_row
        self._rebuild()
        self.move_cursor(row=min(row + 1, self.row_count - 1), animate=False)  # on to the next text
        self.post_message(self.Labelled())

    def action_label(self, value: int) -> None:
        self.labels.upsert(self.items[self._highlighted()].text, value, YES_NO)
        self._labelled()

    def action_label_score(self, digit: int) -> None:
        self.labels.upsert(self.items[self._highlighted()].text, self._digit_value(digit),
                           scale_kind(self.label_scale()))
        self._labelled()

    def action_unlabel(self) -> None:
        self.labels.remove(self.items[self._highlighted()].text)
        self._labelled()
