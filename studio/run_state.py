"""The states a run goes through, one enum for the engine, the event log and the UI."""

from __future__ import annotations

from enum import StrEnum


class RunState(StrEnum):
    IDLE = "idle"  # the app shows no run yet
    STARTING = "starting"  # the app is building the run (importing torch, reading the config)
    NEW = "new"  # a run directory with a config and no status event yet
    LOADING = "loading"  # loading the model and the data
    MEASURING = "measuring"  # evaluating and sampling (the base model at step 0, then at intervals)
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"
    FINISHED = "finished"
    FAILED = "failed"
    KILLED = "killed"  # the process died without a final status (SIGKILL, power loss): resumable

    @property
    def terminal(self) -> bool:
        """The run has ended (by itself, on request, or by dying)."""
        return self in _TERMINAL

    @property
    def active(self) -> bool:
        """A process is working on the run now."""
        return self in _ACTIVE

    @property
    def resumable(self) -> bool:
        return self in _RESUMABLE


_TERMINAL = frozenset({RunState.STOPPED, RunState.FINISHED, RunState.FAILED, RunState.KILLED})
_ACTIVE = frozenset({RunState.LOADING, RunState.MEASURING, RunState.RUNNING, RunState.PAUSED})
_RESUMABLE = frozenset({RunState.STOPPED, RunState.FAILED, RunState.KILLED})
# The states a trainer writes into status events (the others are inferred by readers).
EMITTED = (RunState.LOADING, RunState.MEASURING, RunState.RUNNING, RunState.PAUSED, RunState.STOPPED,
           RunState.FINISHED, RunState.FAILED)
