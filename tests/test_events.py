"""Events: the bus fans out from any thread, the JSONL record survives a torn last line."""

import json
import threading

from studio.events import EventBus, EventFollower, JsonlWriter, read_events


def test_bus_delivers_to_every_subscriber_and_the_disk(tmp_path):
    bus = EventBus()
    seen = []
    writer = JsonlWriter(tmp_path / "events.jsonl")
    bus.subscribe(seen.append)
    bus.subscribe(writer)
    threads = [threading.Thread(target=lambda i=i: bus.emit("step", i, loss=1.0 / (i + 1))) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    writer.close()
    on_disk = read_events(tmp_path / "events.jsonl")
    assert len(seen) == len(on_disk) == 50
    assert sorted(e["step"] for e in on_disk) == list(range(50))
    assert all({"type", "step", "time"} <= set(e) for e in on_disk)


def test_non_finite_numbers_stay_readable(tmp_path):
    writer = JsonlWriter(tmp_path / "e.jsonl")
    bus = EventBus()
    bus.subscribe(writer)
    bus.emit("step", 1, loss=float("nan"))
    writer.close()
    assert read_events(tmp_path / "e.jsonl")[0]["loss"] == "nan"


def test_follower_waits_for_the_end_of_a_line(tmp_path):
    path = tmp_path / "e.jsonl"
    follower = EventFollower(path)
    assert follower.poll() == []
    line = json.dumps({"type": "step", "step": 1, "time": 0})
    path.write_text(line[:10])
    assert follower.poll() == []
    with open(path, "a") as f:
        f.write(line[10:] + "\n")
    assert [e["step"] for e in follower.poll()] == [1]
    assert follower.poll() == []


def test_unknown_event_type_is_refused():
    import pytest

    with pytest.raises(ValueError, match="unknown event type"):
        EventBus().emit("stepp", 1)
