"""The histogram's bins as a strip of cells under the charts, the chosen one highlighted: click a
cell (or use left/right in the pane) to list the texts in that bin. A strip rather than clicks on
the chart itself, because a plotext chart does not say which bar sits under a given cell."""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.app import RenderResult
from textual.message import Message
from textual.widget import Widget


class ScoreBins(Widget):
    class Chosen(Message):
        def __init__(self, index: int) -> None:
            super().__init__()
            self.index = index

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._cells: list[str] = []  # per bin: its label and how many texts it holds
        self._chosen: int | None = None

    def show(self, cells: list[str], chosen: int | None) -> None:
        self._cells, self._chosen = cells, chosen
        self.refresh()

    def _cell_width(self) -> int:
        return max(1, self.size.width // max(1, len(self._cells)))

    def render(self) -> RenderResult:
        width = self._cell_width()
        strip = Text(no_wrap=True, overflow="crop")
        for index, cell in enumerate(self._cells):
            style = "reverse bold" if index == self._chosen else ("" if index % 2 else "dim")
            strip.append(cell[:width - 1].center(width), style=style)
        return strip

    def on_click(self, event: events.Click) -> None:
        index = event.x // self._cell_width()
        if 0 <= index < len(self._cells):
            self.post_message(self.Chosen(index))
