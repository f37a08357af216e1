"""Sampling under CPU contention: the step-0 samples (4 prompts x 64 tokens, greedy and sampled in one
batch, the embedded 135M model) timed alone and with one busy torch neighbour, for OpenMP's default
thread policy and for the studio's (threads that sleep while they wait, OMP_WAIT_POLICY=PASSIVE).

    python bench/sampling_contention.py [--tokens 64] [--prompts 4]

Each measurement runs in a fresh process (the policy is read when torch loads). The neighbour is a
second process training a small model in a loop with torch's default threads, as a second `studio
train` would. Prints seconds and the slowdown the neighbour causes for each policy.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SAMPLE = """
import sys, time
sys.path.insert(0, {root!r})
from studio import models, sampling
from studio.config import DataConfig, ModelConfig
from studio.data import load_rows, to_messages
tokenizer = models.load_tokenizer(models.DEFAULT_MODEL)
model = models.load_model(ModelConfig())
chats = [to_messages(r, DataConfig())[:-1] for r in load_rows(DataConfig())[:{prompts}]]
sampling.generate(model, tokenizer, chats[:1], 4)  # warm-up
started = time.perf_counter()
sampling.greedy_and_sampled(model, tokenizer, chats, {tokens}, 0.7, seed=0)
print(time.perf_counter() - started)
"""

NEIGHBOUR = """
import torch
model = torch.nn.Sequential(*[torch.nn.Linear(512, 512) for _ in range(8)])
optimizer = torch.optim.AdamW(model.parameters())
while True:
    loss = model(torch.randn(64, 512)).square().mean()
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
"""

POLICIES = {"default (OpenMP spins while it waits)": {},
            "studio (OMP_WAIT_POLICY=PASSIVE)": {"OMP_WAIT_POLICY": "PASSIVE"}}


def sample_seconds(env: dict, prompts: int, tokens: int) -> float:
    code = SAMPLE.format(root=str(ROOT), prompts=prompts, tokens=tokens)
    clean = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", code], env={**clean, "HF_HUB_OFFLINE": "1", **env},
                         capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=64)
    args = parser.parse_args()
    results = {}
    for name, env in POLICIES.items():
        alone = sample_seconds(env, args.prompts, args.tokens)
        clean = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
        neighbour = subprocess.Popen([sys.executable, "-c", NEIGHBOUR], env=clean)
        time.sleep(3)  # let it get busy
        try:
            busy = sample_seconds(env, args.prompts, args.tokens)
        finally:
            neighbour.kill()
            neighbour.wait()
        results[name] = (alone, busy)
        print(f"{name:40s} alone {alone:7.1f} s   with a busy neighbour {busy:7.1f} s   x{busy / alone:.1f}",
              flush=True)
    (d_alone, d_busy), (s_alone, s_busy) = results.values()
    print(f"studio/default: alone x{s_alone / d_alone:.2f}, with a neighbour x{s_busy / d_busy:.2f} "
          "(below 1 is faster)")


if __name__ == "__main__":
    main()
