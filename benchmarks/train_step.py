"""Training-step time: what LARS costs in the step a user runs (forward + backward + optimizer step).

The project's VGG-16 with batch norm (``objectives.models``, 10 classes, 32x32 inputs, batch 128)
at the studies' width 0.125 and at full width, trained with four optimizers:

* ``SGD fused`` and ``LARS(SGD fused)``: SGD(lr 0.1, momentum 0.9, fused=True), LARS with its
  defaults (gradient mode, torch's momentum form);
* ``Adam fused`` and ``LARS(Adam fused)``: Adam(lr 1e-3, fused=True), LARS in update mode;
* with ``--compiled``, both LARS variants again with ``torch.compile(opt.step)`` (the first
  call, which compiles, is printed apart and left out of the medians with the warm-up).

Groups come from ``lars.param_groups`` (weight decay 5e-4 on >= 2-D tensors, 1-D tensors
excluded), the same for every variant; each variant has its own copy of the same model. One
interleaved run: every round times one training step of every variant, in a rotating order,
so machine noise hits all alike; the figure is the median over rounds. Each step is timed in two
parts (forward + backward, then ``opt.step()``), so the output gives the ratio of a LARS
variant's whole step to its fused base's (goal <= 1.05), the ratio of the optimizer steps alone,
and the optimizer's share of the step. Wall time and this process's CPU time (steadier on a
machine that others share) are both printed, and a third ratio "from the parts": the pair's
pooled median forward + backward plus each one's median optimizer step, since both run the same
forward and backward and on a busy machine its noise exceeds the whole optimizer step. Measured figures: ``benchmarks/RESULTS.md``
("Training step").

    python benchmarks/train_step.py --widths 0.125 --threads 1 2 --rounds 30
    python benchmarks/train_step.py --widths 1 --threads 1 2 --rounds 5 --warmup 1
    python benchmarks/train_step.py --widths 0.125 --threads 1 --compiled       # + torch.compile(opt.step)
    python benchmarks/train_step.py --device cuda --widths 0.125 1 --rounds 50   # synchronised timing
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import lars  # noqa: E402
from objectives.models import build_model  # noqa: E402

PAIRS = {"SGD fused": "LARS(SGD fused)", "Adam fused": "LARS(Adam fused)"}


def build_variants(width: float, weight_decay: float, device: torch.device, compiled: bool = False) -> dict:
    """label -> (model, optimizer, step); every model starts from the same weights.

    ``compiled`` adds the two LARS variants again with ``torch.compile(opt.step)``.
    """
    sgd = dict(lr=0.1, momentum=0.9, fused=True)
    adam = dict(lr=1e-3, fused=True)
    makers = {
        "SGD fused": lambda g: torch.optim.SGD(g, **sgd),
        "LARS(SGD fused)": lambda g: lars.LARS(torch.optim.SGD(g, **sgd)),
        "Adam fused": lambda g: torch.optim.Adam(g, **adam),
        "LARS(Adam fused)": lambda g: lars.LARS(torch.optim.Adam(g, **adam)),
    }
    if compiled:
        makers["LARS(SGD fused) compiled"] = makers["LARS(SGD fused)"]
        makers["LARS(Adam fused) compiled"] = makers["LARS(Adam fused)"]
    variants = {}
    for label, make in makers.items():
        model = build_model("vgg16", width=width, generator=torch.Generator().manual_seed(0)).to(device).train()
        opt = make(lars.param_groups(model, weight_decay=weight_decay))
        variants[label] = (model, opt, torch.compile(opt.step) if label.endswith("compiled") else opt.step)
    return variants


def _sync(device: torch.device) -> None:
    if device.type == "cuda":  # kernels run asynchronously: time to their end, not their launch
        torch.cuda.synchronize(device)


def _clock(device: torch.device) -> tuple[float, float]:
    _sync(device)
    return time.perf_counter(), time.process_time()


def run(width, threads, rounds, warmup, batch_size, weight_decay, device, compiled=False) -> dict:
    if device.type == "cpu":
        torch.set_num_threads(threads)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(batch_size, 3, 32, 32, generator=gen).to(device)
    y = torch.randint(0, 10, (batch_size,), generator=gen).to(device)
    variants = build_variants(width, weight_decay, device, compiled)
    labels = list(variants)
    parts = {k: {"fwd_bwd": [], "step": [], "fwd_bwd_cpu": [], "step_cpu": []} for k in labels}
    first_step = {}
    for r in range(warmup + rounds):
        for label in labels[r % len(labels) :] + labels[: r % len(labels)]:  # rotate who goes first
            model, opt, step = variants[label]
            t0, c0 = _clock(device)
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            t1, c1 = _clock(device)
            step()
            t2, c2 = _clock(device)
            first_step.setdefault(label, t2 - t1)  # a compiled step's first call compiles it
            if r >= warmup:
                times = parts[label]
                times["fwd_bwd"].append(t1 - t0)
                times["step"].append(t2 - t1)
                times["fwd_bwd_cpu"].append(c1 - c0)
                times["step_cpu"].append(c2 - c1)
    n_params = sum(p.numel() for p in variants[labels[0]][0].parameters())
    where = f"threads={torch.get_num_threads()}" if device.type == "cpu" else str(device)
    print(
        f"\nVGG-16 width {width} ({n_params:,} parameters), batch {batch_size}, {where}, "
        f"{rounds} rounds (+{warmup} warm-up), median ms"
    )
    print(
        f"  {'variant':<26}{'fwd+bwd':>9}{'opt step':>10}{'total':>9}{'opt share':>11}"
        f"{'cpu total':>11}{'cpu share':>11}"
    )
    med = {k: {part: statistics.median(v) for part, v in parts[k].items()} for k in labels}
    totals = {}
    for label in labels:
        m = med[label]
        # Median of the per-round sums, not the sum of medians: a round is one training step.
        total = statistics.median(a + b for a, b in zip(parts[label]["fwd_bwd"], parts[label]["step"]))
        cpu = statistics.median(a + b for a, b in zip(parts[label]["fwd_bwd_cpu"], parts[label]["step_cpu"]))
        totals[label] = (total, cpu)
        print(
            f"  {label:<26}{m['fwd_bwd'] * 1e3:>9.1f}{m['step'] * 1e3:>10.2f}{total * 1e3:>9.1f}"
            f"{m['step'] / total:>10.1%}{cpu * 1e3:>11.1f}{m['step_cpu'] / cpu:>10.1%}"
        )
    ratios = {}
    pairs = [(base, wrapped) for base, wrapped in PAIRS.items()]
    pairs += [(base, f"{wrapped} compiled") for base, wrapped in PAIRS.items() if compiled]
    for base, wrapped in pairs:
        step_ratio = totals[wrapped][0] / totals[base][0]
        cpu_ratio = totals[wrapped][1] / totals[base][1]
        opt_ratio = med[wrapped]["step"] / med[base]["step"]
        # Both variants run the same forward and backward (same model, same batch): on a busy
        # machine their medians differ by noise larger than the whole optimizer step, so the
        # ratio is also estimated from the parts, with the pair's pooled forward + backward.
        shared = statistics.median(parts[base]["fwd_bwd"] + parts[wrapped]["fwd_bwd"])
        parts_ratio = (shared + med[wrapped]["step"]) / (shared + med[base]["step"])
        ratios[wrapped] = (step_ratio, cpu_ratio, opt_ratio, parts_ratio)
        print(
            f"  {wrapped} / {base}: training step {step_ratio:.3f}x wall, {cpu_ratio:.3f}x cpu, "
            f"{parts_ratio:.4f}x from the parts (goal <= 1.05); optimizer step alone {opt_ratio:.2f}x"
        )
    for label in labels:
        if label.endswith("compiled"):
            print(f"  {label}: first call (compilation) {first_step[label]:.1f} s")
    return ratios


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--widths", nargs="+", type=float, default=[0.125])
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2], help="CPU threads, one run each")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--weight-decay", type=float, default=5e-4)
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default cpu)")
    parser.add_argument("--compiled", action="store_true", help="also time torch.compile(opt.step) of each LARS")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    print(f"torch {torch.__version__}, {where}, python {platform.python_version()}")
    if hasattr(os, "getloadavg"):  # other processes' load is part of the evidence on a shared machine
        print("load average at start: " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))
    for width in args.widths:
        for threads in args.threads if device.type == "cpu" else [torch.get_num_threads()]:
            run(width, threads, args.rounds, args.warmup, args.batch_size, args.weight_decay, device, args.compiled)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
