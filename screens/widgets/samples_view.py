"""Sampled chats: for each fixed prompt, the answer at each sampling step beside the base model's."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Static

MODES = ("greedy", "sampled")


class SamplesView(Vertical):
    """History is newest first: position 0 is the latest sampling step; `older`/`newer` move along it."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        # (prompt index, mode) -> [(step, prompt, response, repeats)] sorted by step
        self._samples: dict[tuple[int, str], list[tuple[int, str, str, int]]] = {}
        self.prompt = 0
        self.mode = MODES[0]
        self.position = 0
        self.start = "base"  # what step 0 samples

    def compose(self) -> ComposeResult:
        yield Static(id="sample-head")
        with Horizontal(id="sample-answers"):
            with VerticalScroll(id="sample-base-box"):
                yield Static(id="sample-base")
            with VerticalScroll(id="sample-now-box"):
                yield Static(id="sample-now")

    def on_mount(self) -> None:
        self._redraw()

    # -- data ------------------------------------------------------------------------------------

    def clear(self, start: str = "base") -> None:
        """Forget the samples; `start` names what step 0 samples (the base model, or the adapter a run continues)."""
        self.start = start
        self._samples.clear()
        self.prompt, self.mode, self.position = 0, MODES[0], 0
        self._redraw()

    def add(self, events: list[dict[str, Any]]) -> None:
        for e in events:
            key = (int(e.get("index", 0)), e.get("mode", "greedy"))
            history = self._samples.setdefault(key, [])
            # A resumed run samples a step again: the newer answer replaces the old one.
            replaced = any(h[0] == e["step"] for h in history)
            history[:] = [h for h in history if h[0] != e["step"]]
            history.append((e["step"], e.get("prompt", ""), e.get("response", ""), int(e.get("repeats") or 0)))
            history.sort(key=lambda h: h[0])
            if self.position and not replaced and key == (self.prompt, self.mode):
                self.position += 1  # keep the step the user is reading in view
        self._redraw()

    def forget_after(self, step: int) -> None:
        """A resume trains the steps after `step` again: their answers are superseded."""
        for history in self._samples.values():
            history[:] = [h for h in history if h[0] <= step]
        self.position = 0
        self._redraw()

    @property
    def steps(self) -> int:
        """How many sampling steps the shown prompt has."""
        return len(self._history())

    def _history(self) -> list[tuple[int, str, str, int]]:
        return self._samples.get((self.prompt, self.mode), [])

    def _prompts(self) -> list[int]:
        return sorted({index for index, _ in self._samples})

    # -- moving ----------------------------------------------------------------------------------

    def older(self) -> None:
        self.position = min(self.position + 1, max(len(self._history()) - 1, 0))
        self._redraw()

    def newer(self) -> None:
        self.position = max(self.position - 1, 0)
        self._redraw()

    def next_prompt(self, delta: int) -> None:
        prompts = self._prompts()
        if prompts:
            here = prompts.index(self.prompt) if self.prompt in prompts else 0
            self.prompt = prompts[(here + delta) % len(prompts)]
            self.position = 0
        self._redraw()

    def toggle_mode(self) -> None:
        self.mode = MODES[(MODES.index(self.mode) + 1) % len(MODES)]
        self.position = 0
        self._redraw()

    # -- drawing ---------------------------------------------------------------------------------

    def _redraw(self) -> None:
        head = self.query_one("#sample-head", Static)
        base = self.query_one("#sample-base", Static)
        now = self.query_one("#sample-now", Static)
        base_box = self.query_one("#sample-base-box")
        now_box = self.query_one("#sample-now-box")
        history = self._history()
        self.query_one("#sample-answers").display = bool(history)
        if not history:
            head.update(Text("sampled chats appear here: the base model's at step 0, then every "
                             "train.sample_every steps", style="dim"))
            return
        newest_first = history[::-1]
        step, prompt, answer, repeats = newest_first[min(self.position, len(newest_first) - 1)]
        base_step, _, base_answer, base_repeats = history[0]
        prompts = self._prompts()
        head_text = Text()
        head_text.append(f"prompt {prompts.index(self.prompt) + 1}/{len(prompts)} · {self.mode} · ", style="bold")
        head_text.append(f"step {step} ({self.position + 1}/{len(history)}, newest first)\n", style="bold")
        head_text.append(prompt)
        head.update(head_text)
        base.update(_shown(base_answer))
        now.update(_shown(answer))
        base_box.border_title = f"{self.start} (step 0)" if base_step == 0 else f"first sample (step {base_step})"
        now_box.border_title = f"step {step}"
        # A looping answer ("they are, they are, they are") is marked where it is read, not hidden.
        base_box.border_subtitle = f"repeats x{base_repeats}" if base_repeats else ""
        now_box.border_subtitle = f"repeats x{repeats}" if repeats else ""


def _shown(answer: str) -> str | Text:
    """An answer as shown; an empty one (only whitespace or special tokens) says so instead of an empty box."""
    return answer if answer.strip() else Text("(an empty answer)", style="dim italic")
