"""The judge curve's cost to training: a tiny model's step rate with train.judge_every on vs off, the
judge a real OpenAI-compatible server on loopback (llm-katan's echo backend) with latency and errors.

    python bench/judge_curve.py [--steps 60] [--latency-ms 500] [--error-rate 0.3]

Both runs sample at the same steps (the samples are the judge's input either way), so the ratio is
the judge's own cost: the goal is a step rate with the judge >= 0.95x of without (train time per step,
evals, samples and saves excluded from both).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from katan import Katan  # noqa: E402  (the tests' loopback server)


def step_seconds(cfg, run_dir: Path) -> list[float]:
    from studio.events import read_events
    from studio.train import TrainingRun

    run = TrainingRun(cfg, run_dir)
    run.start()
    run.join()
    if run.state != "finished":
        raise RuntimeError(run.error)
    return [e["step_time_s"] for e in read_events(run.paths.events) if e["type"] == "step"][2:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--latency-ms", type=int, default=500)
    parser.add_argument("--error-rate", type=float, default=0.3)
    args = parser.parse_args()

    from studio.config import RunConfig
    from studio.models import tiny_model_dir

    work = Path(tempfile.mkdtemp())
    model = tiny_model_dir(work / "tiny")
    data = work / "qa.jsonl"
    data.write_text("".join(json.dumps({"question": f"Name colour {i}.", "answer": f"Colour {i}, it is."}) + "\n"
                            for i in range(64)))
    base = RunConfig().with_overrides([
        f"model.name={json.dumps(str(model))}", f"data.dataset={json.dumps(str(data))}", "data.response_column=answer",
        "data.max_length=64", f"train.max_steps={args.steps}", "train.batch_size=4", "train.eval_every=0",
        "train.sample_every=5", "train.save_every=0", "train.observe_budget=1.0", "train.sample_prompts=2",
        "train.sample_max_new_tokens=16"])
    with Katan(work, "--latency-ms", str(args.latency_ms), "--error-rate", str(args.error_rate)) as server:
        prompt = work / "judge.toml"
        prompt.write_text(f'name = "echo"\nscale = [1, 10]\nparse = "score"\nsystem = "Rate <text-{{nonce}}>."\n'
                          f'template = """{{text}}\n\nScore: 7"""\n\n[endpoint]\nbase_url = "{server.base_url}"\n'
                          f'model = "judge-echo"\n')
        off = step_seconds(base, work / "off")
        on = step_seconds(base.with_overrides(["train.judge_every=5", f"train.judge_prompt={json.dumps(str(prompt))}"]),
                          work / "on")
    rate_off, rate_on = 1 / statistics.median(off), 1 / statistics.median(on)
    print(f"steps/s without the judge {rate_off:.1f}, with it {rate_on:.1f}: x{rate_on / rate_off:.2f} "
          f"(goal >= 0.95; judge latency {args.latency_ms} ms, {args.error_rate:.0%} HTTP 500s)")


if __name__ == "__main__":
    main()
