"""What an engine thread that computed now and then costs the job running beside it.

    .venv/bin/python tests/bench/bench_threads.py [--threads N] [--rounds 3]

The engine computes in several threads: a job worker, request slots (suggest) and background
learning. Each thread that ran torch keeps its own OpenMP team (stylefill.openmp). This runs,
as the engine does, one forward pass in a slot thread (a suggest), then U (100 bare
forward+backward passes of the backbone at 224 px) in a job thread, with the slot keeping its
team and with the slot handing it back; beside them U in this process's main thread, alone.
Rounds alternate the three; the medians are printed in seconds and as ratios to the main
thread's U. Target: a job beside an idle slot as fast as alone (ratio about 1).
"""

from __future__ import annotations

import argparse
import statistics
from concurrent.futures import ThreadPoolExecutor

import torch
from units import bare_passes, parse_with_threads

from stylefill.backbones import load_backbone
from stylefill.openmp import release_team


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    args = parse_with_threads(ap)
    net = load_backbone()
    image = torch.rand(1, 3, 224, 224)

    def suggest(hand_back: bool) -> None:
        with torch.no_grad():
            net(image)
        if hand_back:
            release_team()

    times: dict[str, list[float]] = {"main thread, alone": [], "job beside a slot that kept its team": [],
                                     "job beside a slot that handed it back": []}
    labels = list(times)
    for _ in range(args.rounds):
        times[labels[0]].append(bare_passes(net))
        release_team()  # the main thread computes no more this round, as in the engine
        for label, hand_back in ((labels[1], False), (labels[2], True)):
            with ThreadPoolExecutor(1) as slot, ThreadPoolExecutor(1) as job:
                slot.submit(suggest, hand_back).result()
                times[label].append(job.submit(bare_passes, net).result())
    unit = statistics.median(times[labels[0]])
    print(f"torch threads: {torch.get_num_threads()}; rounds: {args.rounds}")
    for label, secs in times.items():
        sec = statistics.median(secs)
        print(f"{label:<40} {sec:7.2f} s {sec / unit:6.2f}")


if __name__ == "__main__":
    main()
