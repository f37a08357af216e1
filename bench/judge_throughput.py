"""Judge throughput against llm-katan (echo backend, 200 ms latency per request), all in one run:

  1. sequential (concurrency 1) vs concurrent (concurrency 8) on 200 texts: times and the ratio
     (target: at least 6x);
  2. the concurrent run again with a warm cache: requests the server received (target: 0).

Requests are counted on the server (its /stats endpoint), not by the client.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from katan import Katan  # noqa: E402  (the tests' server helper)

from studio.judge import JudgeCache, JudgeItem, load_prompt, run_judge_sync  # noqa: E402

N_TEXTS = 200
LATENCY_MS = 200


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="judge-bench-"))
    items = [JudgeItem(f"Text number {i}, hmm. Score: {i % 10 + 1}", "bench") for i in range(N_TEXTS)]
    with Katan(work, "--latency-ms", str(LATENCY_MS), "--max-concurrent", "64") as server:
        prompt = load_prompt("yoda").with_endpoint(base_url=server.base_url, model="judge-echo")
        # Warm up the connection and the server's first-request costs outside the timings.
        run_judge_sync(prompt, items[:2], concurrency=2)

        start = time.perf_counter()
        sequential = run_judge_sync(prompt, items, concurrency=1)
        t_seq = time.perf_counter() - start

        cache = JudgeCache(work / "judge.sqlite")
        start = time.perf_counter()
        concurrent = run_judge_sync(prompt, items, concurrency=8, cache=cache)
        t_conc = time.perf_counter() - start

        before = server.requests()
        start = time.perf_counter()
        cached = run_judge_sync(prompt, items, concurrency=8, cache=cache)
        t_cached = time.perf_counter() - start
        cached_requests = server.requests() - before

    for name, results in (("sequential", sequential), ("concurrent", concurrent), ("cached", cached)):
        assert sum(r.score is not None for r in results) == N_TEXTS, f"{name}: not every text was scored"
    ratio = t_seq / t_conc
    print(f"{N_TEXTS} texts, llm-katan echo with {LATENCY_MS} ms latency")
    print(f"  sequential (concurrency 1): {t_seq:6.2f} s  ({N_TEXTS / t_seq:5.1f} texts/s)")
    print(f"  concurrent (concurrency 8): {t_conc:6.2f} s  ({N_TEXTS / t_conc:5.1f} texts/s)")
    print(f"  speed-up: {ratio:.2f}x  (target >= 6x) {'OK' if ratio >= 6 else 'BELOW TARGET'}")
    print(f"  cached re-run: {t_cached:6.2f} s, {cached_requests} requests to the server  (target 0) "
          f"{'OK' if cached_requests == 0 else 'BELOW TARGET'}")
    return 0 if ratio >= 6 and cached_requests == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
