"""The real embedded model (SmolLM2-135M-Instruct): DPO on the demo pairs, continuing an SFT adapter."""

import json
import os

import pytest

from studio.config import RunConfig
from studio.events import read_events
from studio.train import TrainingRun

COMMON = ["train.max_steps=30", "train.eval_every=30", "train.sample_every=0", "train.save_every=0",
          "data.max_length=256", "data.eval_max_rows=16"]


def train(overrides: list[str], run_dir) -> dict[int, dict]:
    run = TrainingRun(RunConfig().with_overrides(COMMON + overrides), run_dir)
    run.start()
    assert run.join(1800), "30 steps took over 30 minutes"
    assert run.state == "finished", run.error
    return {e["step"]: e for e in read_events(run.paths.events) if e["type"] == "eval"}


# Three real 30-step runs (SFT, DPO, and continued SFT as the control) would add several minutes to a suite already
# near its 20-minute budget: run it on purpose, STUDIO_REAL_DPO=1 pytest -n 0 tests/test_dpo_real.py
@pytest.mark.slow
@pytest.mark.timeout(1800)  # three real runs: the suite's 600 s per test cut one off mid-run (run it with -n 0)
@pytest.mark.skipif(not os.environ.get("STUDIO_REAL_DPO"), reason="set STUDIO_REAL_DPO=1 (three real 30-step runs)")
def test_dpo_after_sft_keeps_the_style_and_widens_the_held_out_margin(tmp_path):
    sft = train(["train.learning_rate=1e-3"], tmp_path / "sft")
    adapter = f"model.adapter={json.dumps(str(tmp_path / 'sft' / 'adapter'))}"
    # DPO as the app sets it up: its defaults (learning rate auto: 5e-5, beta 0.1, the chosen answers' NLL term).
    dpo_run = ["train.method=\"dpo\"", "train.learning_rate=\"auto\"", "train.batch_size=4", adapter]
    dpo = train(dpo_run, tmp_path / "dpo")
    # The control: the same 30 steps on the same pairs with only the chosen answers' NLL, i.e. more SFT: DPO is held to
    # what more SFT would have done to the held-out style paragraph. (After a cosine SFT more SFT raised it, 3.585 ->
    # 3.617, and DPO passed; after today's constant-rate SFT more SFT lowers it and DPO fails: session 7's note.)
    more_sft = train([*dpo_run, "dpo.loss=\"sft\"", "dpo.sft_weight=0"], tmp_path / "more-sft")
    # Step 0 of the DPO run is the SFT model; its held-out measures are SFT's final ones.
    assert dpo[0]["style_loss"] == pytest.approx(sft[30]["style_loss"], rel=1e-3)
    measured = (f"held-out Yoda answers' loss {dpo[0]['eval_loss']:.4f} after SFT, {dpo[30]['eval_loss']:.4f} after "
                f"DPO; style loss {sft[30]['style_loss']:.4f} after SFT, {dpo[30]['style_loss']:.4f} after DPO, "
                f"{more_sft[30]['style_loss']:.4f} after more SFT; held-out pair margin {dpo[0]['pair_margin']:.3f} -> "
                f"{dpo[30]['pair_margin']:.3f}")  # all of them, whichever fails
    assert dpo[30]["eval_loss"] <= dpo[0]["eval_loss"] + 0.005, measured  # held-out Yoda answers keep their likelihood
    assert dpo[30]["style_loss"] <= more_sft[30]["style_loss"] + 0.02, measured  # the style: no worse than more SFT
    assert dpo[30]["pair_margin"] > dpo[0]["pair_margin"] + 1.0, measured  # chosen (Yoda) over rejected (plain) grows
