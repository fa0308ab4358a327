"""Optimizer step time: LARS(SGD) and LARS(Adam) against torch's fused SGD and Adam.

One interleaved run: every round times one ``step()`` of every variant in turn, so
machine noise (other processes, frequency changes) hits all variants alike; the
figure is the median over rounds, of wall time and of this process's CPU time (the
second is steadier on a machine other processes share). Parameter sets have real shapes:

* ``resnet50``: torchvision's ResNet-50 (161 tensors, 25,557,032 parameters);
* ``vgg16-cifar``: VGG-16 with batch norm for 32x32 inputs and 10 classes
  (13 conv 3x3 + BN, one Linear(512, 10); 14,728,266 parameters in 54 tensors).

Groups come from ``lars.param_groups`` (weight decay on >= 2-D tensors, 1-D tensors
excluded), the same groups for every variant; gradients are fixed random tensors.
Bases: SGD(lr 0.1, momentum 0.9) and Adam(lr 1e-3), ``fused=True``, LARS with its
defaults (gradient mode for SGD, update mode for Adam). "Extra MB" is what LARS keeps
beyond the base's state (one work tensor per adapted parameter, a CPU scratch area).
The last lines print each LARS variant's ratio to its fused base: on a GPU the goal is
at most 1.5x; the CPU target of 2.0x is retired (issue 27), since the last table
(:func:`lower_bounds`), which times pass by pass the least work any design within issue
#13's rules must do, puts the floor above it on the CPU. What counts on the CPU is the
training step (``benchmarks/train_step.py``).
Measured figures live in ``benchmarks/RESULTS.md`` ("Optimizer step").

    python benchmarks/optimizer_step.py --sets resnet50                 # default threads
    python benchmarks/optimizer_step.py --sets resnet50 --threads 1 --rounds 30
    python benchmarks/optimizer_step.py --device cuda --rounds 50       # on a GPU (synchronised timing)
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import lars  # noqa: E402

VGG16 = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


def resnet50_model() -> torch.nn.Module:
    import torchvision

    with torch.device("meta"):
        return torchvision.models.resnet50()


def vgg16_cifar_model() -> torch.nn.Module:
    layers, channels = [], 3
    with torch.device("meta"):
        for item in VGG16:
            if item == "M":
                layers.append(torch.nn.MaxPool2d(2))
                continue
            layers += [torch.nn.Conv2d(channels, item, 3, padding=1), torch.nn.BatchNorm2d(item), torch.nn.ReLU()]
            channels = item
        layers += [torch.nn.Flatten(), torch.nn.Linear(512, 10)]
        return torch.nn.Sequential(*layers)


SETS = {"resnet50": resnet50_model, "vgg16-cifar": vgg16_cifar_model}


class _Params(torch.nn.Module):
    """Real tensors with the shapes (and names) of a meta model's parameters."""

    def __init__(self, meta: torch.nn.Module, seed: int, device: torch.device):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.names = []
        for i, (name, p) in enumerate(meta.named_parameters()):
            scale = 0.05 if p.dim() > 1 else 1.0
            value = (torch.randn(p.shape, generator=gen) * scale).to(device)
            self.register_parameter(f"p{i}", torch.nn.Parameter(value))
            self.names.append(name)


def build_variants(meta, grads, weight_decay, device):
    def fresh():
        module = _Params(meta, seed=0, device=device)
        for p, g in zip(module.parameters(), grads):
            p.grad = g
        return module

    def groups(module):
        return lars.param_groups(module, weight_decay=weight_decay)

    sgd = dict(lr=0.1, momentum=0.9)
    adam = dict(lr=1e-3)
    variants = {}
    m = fresh()
    variants["SGD fused"] = torch.optim.SGD(groups(m), **sgd, fused=True)
    m = fresh()
    variants["LARS(SGD fused)"] = lars.LARS(torch.optim.SGD(groups(m), **sgd, fused=True))
    m = fresh()
    variants["Adam fused"] = torch.optim.Adam(groups(m), **adam, fused=True)
    m = fresh()
    variants["LARS(Adam fused)"] = lars.LARS(torch.optim.Adam(groups(m), **adam, fused=True))
    return variants


def state_bytes(opt) -> int:
    total = 0
    for per_param in opt.state.values():
        for value in per_param.values():
            if torch.is_tensor(value):
                total += value.numel() * value.element_size()
    return total


def extra_bytes(opt) -> int:
    if isinstance(opt, lars.LARS):
        kept = list(opt._work.values()) + list(opt._workspace.values())
        return sum(t.numel() * t.element_size() for t in kept)
    return 0


def _sync(device: torch.device) -> None:
    if device.type == "cuda":  # kernels run asynchronously: time to their end, not their launch
        torch.cuda.synchronize(device)


def run_set(name, rounds, warmup, weight_decay, device):
    meta = SETS[name]()
    shapes = [p.shape for p in meta.parameters()]
    gen = torch.Generator().manual_seed(1)
    grads = [(torch.randn(s, generator=gen) * 1e-2).to(device) for s in shapes]
    variants = build_variants(meta, grads, weight_decay, device)
    times = {k: [] for k in variants}
    cpu_times = {k: [] for k in variants}
    for r in range(warmup + rounds):
        for label, opt in variants.items():
            _sync(device)
            start, cpu_start = time.perf_counter(), time.process_time()
            opt.step()
            _sync(device)
            elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
            if r >= warmup:
                times[label].append(elapsed)
                cpu_times[label].append(cpu)
    n_params = sum(s.numel() for s in shapes)
    print(
        f"\n{name}: {len(shapes)} tensors, {n_params:,} parameters, "
        f"weight_decay={weight_decay}, {rounds} rounds (+{warmup} warm-up)"
    )
    medians = {k: statistics.median(v) for k, v in times.items()}
    cpu_medians = {k: statistics.median(v) for k, v in cpu_times.items()}
    print(
        f"  {'variant':<18}{'median ms':>10}{'vs fused':>10}{'cpu ms':>10}{'vs fused':>10}"
        f"{'state MB':>10}{'extra MB':>10}"
    )
    ratios = {}
    for label, opt in variants.items():
        base = "SGD fused" if "SGD" in label else "Adam fused"
        ratio = medians[label] / medians[base]
        cpu_ratio = cpu_medians[label] / cpu_medians[base]
        if label != base:
            ratios[label] = (ratio, cpu_ratio)
        print(
            f"  {label:<18}{medians[label] * 1e3:>10.2f}{ratio:>9.2f}x"
            f"{cpu_medians[label] * 1e3:>10.2f}{cpu_ratio:>9.2f}x"
            f"{state_bytes(opt) / 2**20:>10.1f}{extra_bytes(opt) / 2**20:>10.1f}"
        )
    for label, (ratio, cpu_ratio) in ratios.items():
        print(f"  LARS/fused-base ratio, {label}: {ratio:.2f}x wall, {cpu_ratio:.2f}x cpu (GPU goal <= 1.50x)")
    return medians


def lower_bounds(name, rounds, weight_decay, device):
    """What any design within issue #13's rules must spend, pass by pass, against the fused bases.

    The rules (the base steps the real parameters with its own weight decay, ``p.grad``
    is left as it was, no private kernel) leave each mode a minimum of passes over the
    adapted tensors, each timed here in its cheapest public form:

    * gradient mode: ``‖w‖`` and ``‖g‖`` (the faster of ``_foreach_norm`` and ``dot``),
      then one pass reading ``g`` and ``w`` and writing ``X`` (``torch.add(g, w, alpha,
      out=X)`` stands in for a kernel writing ``r·g + c·w``, which torch lacks);
    * update mode: the copy of ``w`` saved before the base step and its norm, then
      ``‖w_new − w_old‖`` (``dot(w_new, w_old)`` stands in: the same two reads, no
      write; ``torch.dist`` materialises the difference) and one lerp back into ``w``.

    The sum over the base's step is the ratio no such design can beat on this machine.
    """
    meta = SETS[name]()
    gen = torch.Generator().manual_seed(2)
    grads = [(torch.randn(p.shape, generator=gen) * 1e-2).to(device) for p in meta.parameters()]
    variants = build_variants(meta, grads, weight_decay, device)
    adapted = [i for i, p in enumerate(meta.parameters()) if p.dim() >= 2]
    w = [torch.randn(grads[i].shape, generator=gen).to(device) * 0.05 for i in adapted]
    g = [grads[i] for i in adapted]
    out = [torch.empty_like(t) for t in w]
    saved = [t.clone() for t in w]
    flat_w, flat_g, flat_saved = ([t.view(-1) for t in ts] for ts in (w, g, saved))
    half = [torch.tensor(0.5, device=device) for _ in w]
    passes = {
        "SGD fused step": variants["SGD fused"].step,
        "Adam fused step": variants["Adam fused"].step,
        "norm (_foreach_norm)": lambda: torch._foreach_norm(w),
        "norm (dot loop)": lambda: [torch.dot(t, t).sqrt() for t in flat_w],
        "norm of g (_foreach_norm)": lambda: torch._foreach_norm(g),
        "norm of g (dot loop)": lambda: [torch.dot(t, t).sqrt() for t in flat_g],
        "X from g, w (add out=)": lambda: [torch.add(a, b, alpha=-1e-4, out=x) for a, b, x in zip(g, w, out)],
        "copy w -> saved": lambda: torch._foreach_copy_(saved, w),
        "norm of w - saved (dot)": lambda: [torch.dot(a, b) for a, b in zip(flat_w, flat_saved)],
        "lerp w <- saved": lambda: torch._foreach_lerp_(out, saved, half),
    }
    times = {k: [] for k in passes}
    for r in range(rounds + 2):
        for label, fn in passes.items():
            _sync(device)
            start = time.perf_counter()
            fn()
            _sync(device)
            if r >= 2:
                times[label].append(time.perf_counter() - start)
    ms = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    print(f"\npasses over the {len(w)} adapted tensors of {name}, median wall ms of {rounds} interleaved rounds:")
    for label, value in ms.items():
        print(f"  {label:<28}{value:>8.2f} ms")
    norm_w = min(ms["norm (_foreach_norm)"], ms["norm (dot loop)"])
    norm_g = min(ms["norm of g (_foreach_norm)"], ms["norm of g (dot loop)"])
    gradient = ms["SGD fused step"] + norm_w + norm_g + ms["X from g, w (add out=)"]
    update = (
        ms["Adam fused step"] + ms["copy w -> saved"] + norm_w + ms["norm of w - saved (dot)"] + ms["lerp w <- saved"]
    )
    print(
        f"  lower bound, gradient mode (SGD): {gradient / ms['SGD fused step']:.2f}x the fused step; "
        f"update mode (Adam): {update / ms['Adam fused step']:.2f}x (the retired CPU target was 2.00x)"
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--no-bounds", action="store_true", help="skip the lower bounds (pass by pass)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda[:N] (default cpu)")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    print(f"torch {torch.__version__}, {where}, threads={torch.get_num_threads()}, python {platform.python_version()}")
    for name in args.sets:
        run_set(name, args.rounds, args.warmup, args.weight_decay, device)
    if not args.no_bounds:
        lower_bounds(args.sets[0], args.rounds, args.weight_decay, device)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
