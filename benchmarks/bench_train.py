"""Training speed of one full pix2pix step (D step + G step), ours against the reference.

What is timed is exactly `pix2pix_lib.train.TrainingState.training_step` (G forward, D on real and fake
pairs, D update, G objective through the frozen D, G update), on a fixed random batch in [-1, 1].
With `--reference PATH` (a checkout of junyanz/pytorch-CycleGAN-and-pix2pix) the reference's own
`optimize_parameters()` is timed at the same settings, built through its own option parser.

    python benchmarks/bench_train.py --quick                      # < 30 s: does it work?
    python benchmarks/bench_train.py                              # 256 b1, 256 b4, quick; fp32 + bf16
    python benchmarks/bench_train.py --reference /tmp/ref --interleave step --json out.json
    python benchmarks/bench_train.py --device cuda --precision fp32,bf16,fp16 --channels-last --compile --cudnn-benchmark both

Measurements run in fresh worker processes (this file with `--worker`), so one implementation's
cached allocations or thread pools cannot flatter or slow the next. `--interleave process` (default):
one process per variant and round, and peak memory is that process's own (CPU: ru_maxrss minus the
RSS before the networks exist; CUDA: torch.cuda.max_memory_allocated). `--interleave step`: one
process per config and round builds every variant and alternates single steps (ours, reference,
ours, ...), the tightest comparison on a shared machine; its CPU peak memory is exact only for the
first variant. Either way the table shows the median over `--rounds`, the spread, wall and CPU
time per step, and images/s relative to the reference in fp32. On a busy machine compare with
`--threads 1`: its CPU time per step hardly moves with other people's load; two threads' wall time
can be 10x slower when the cores are shared (OpenMP threads wait for each other).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# name -> (preset, overrides). `paper`: 256 px, ngf = ndf = 64, batch norm, 70x70 PatchGAN.
# `quick`: 128 px, ngf = ndf = 32, batch 8 (its preset precision, bf16, is overridden per run).
# Any other setting is written SIZEbBATCH[nWIDTH] on the paper preset: "64b16n32" = 64 px, batch 16,
# ngf = ndf = 32 (see `config_for`).
CONFIGS = {
    "256b1": ("paper", {"batch_size": 1}),
    "256b4": ("paper", {"batch_size": 4}),
    "256b16": ("paper", {"batch_size": 16}),  # GPU-sized; ~10 s a step on a 2-core CPU
    "quick": ("quick", {}),
}


def config_for(name: str) -> tuple[str, dict]:
    """(preset, overrides) for a config name: one of CONFIGS, or SIZEbBATCH[nWIDTH]."""
    if name in CONFIGS:
        return CONFIGS[name]
    match = re.fullmatch(r"(\d+)b(\d+)(?:n(\d+))?", name)
    if not match:
        raise ValueError(f"unknown config {name!r}: choose from {sorted(CONFIGS)} or write SIZEbBATCH[nWIDTH]")
    size, batch, width = match.groups()
    overrides = {"image_size": int(size), "batch_size": int(batch)}
    if width:
        overrides |= {"ngf": int(width), "ndf": int(width)}
    return "paper", overrides


DEFAULT_CONFIGS = {"cpu": "256b1,256b4,quick", "cuda": "256b1,256b4,256b16,quick"}


# --- the worker: build one implementation, warm up, time -----------------------------------------
def current_rss_bytes() -> int:
    """Resident memory now (psutil when installed, else the peak so far, which is an upper bound)."""
    try:
        import psutil
        return psutil.Process().memory_info().rss
    except ImportError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def build_ours(spec: dict, device):
    """`TrainingState.from_config` at the spec's settings; returns (step function, config, model)."""
    from pix2pix_lib.config import preset
    from pix2pix_lib.train import TrainingState

    preset_name, overrides = config_for(spec["config"])
    config = preset(preset_name, **overrides, precision=spec["precision"],
                    channels_last=spec["channels_last"], compile=spec["compile"], device=str(device))
    model = TrainingState.from_config(config, device)  # the trainer's own path, torch.compile included
    model.generator.train()
    model.discriminator.train()
    a, b = random_batch(config.batch_size, config.image_size)
    a, b = model.to_device(a), model.to_device(b)
    return (lambda: model.training_step(a, b)), config, model


def build_reference(spec: dict, device, ref_path: str):
    """The reference's pix2pix model, built through its own TrainOptions; returns its step function."""
    import torch
    from pix2pix_lib.config import preset

    preset_name, overrides = config_for(spec["config"])
    config = preset(preset_name, **overrides)
    if config.image_size not in (128, 256):
        raise ValueError(f"the reference has U-Nets for 128 and 256 px only, not {config.image_size}")
    # The reference imports its packages by top-level names (options, models, data, util).
    sys.path.insert(0, os.path.abspath(ref_path))
    # Its visualiser needs dominate/visdom; the training step never touches them. If a checkout's
    # import chain pulls them in anyway, empty stand-ins keep the benchmark free of those packages.
    import types
    for name in ("dominate", "dominate.tags", "visdom", "wandb"):
        try:
            __import__(name)
        except ImportError:
            sys.modules[name] = types.ModuleType(name)
    from models import create_model
    from options.train_options import TrainOptions

    workdir = tempfile.mkdtemp(prefix="bench_ref_")  # it writes <checkpoints_dir>/<name>/train_opt.txt
    argv = ["train.py", "--dataroot", workdir, "--checkpoints_dir", workdir, "--name", "bench",
            "--model", "pix2pix", "--netG", f"unet_{config.image_size}", "--netD", "basic",
            "--norm", "batch", "--gpu_ids", "0" if device.type == "cuda" else "-1",
            "--batch_size", str(config.batch_size), "--load_size", str(config.image_size),
            "--crop_size", str(config.image_size), "--dataset_mode", "aligned", "--direction", "AtoB",
            "--ngf", str(config.ngf), "--ndf", str(config.ndf), "--display_id", "-1"]
    saved_argv, sys.argv = sys.argv, argv
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # it prints its options and networks
            opt = TrainOptions().parse()
            model = create_model(opt)
            model.setup(opt)
    finally:
        sys.argv = saved_argv
    a, b = random_batch(config.batch_size, config.image_size)
    # Already on the device, as ours: its set_input's .to(device) is then free, and neither side
    # pays for a host-to-device copy inside the timed step.
    a, b = a.to(device), b.to(device)
    batch = {"A": a, "B": b, "A_paths": ["a.png"] * len(a), "B_paths": ["b.png"] * len(b)}
    dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[spec["precision"]]

    def step():
        model.set_input(batch)  # as in its train.py
        # Autocast around the reference is our addition (for --reference-precisions bf16 only).
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            model.optimize_parameters()
    return step, config, model


def random_batch(batch_size: int, image_size: int):
    import torch
    g = torch.Generator().manual_seed(0)
    a = torch.rand(batch_size, 3, image_size, image_size, generator=g) * 2 - 1  # (B, 3, H, W) sketch
    b = torch.rand(batch_size, 3, image_size, image_size, generator=g) * 2 - 1  # (B, 3, H, W) target
    return a, b


def run_worker(specs: list[dict]) -> list[dict]:
    """Build every spec in this process and warm it up, then time their steps in turn (A B A B).

    Peak memory is the growth while one spec is built and warmed up. On CUDA that is exact for
    every spec (allocated bytes); on CPU only for the first spec of a process (ru_maxrss is the
    lifetime peak), so the others get None.
    """
    import torch

    device = torch.device(specs[0]["device"])
    if device.type == "cpu":
        torch.set_num_threads(specs[0]["threads"])
    # cuDNN autotuning: both implementations switch it on when they build their networks (ours in
    # TrainingState.from_config, the reference in BaseModel.__init__). It is a process-wide switch, so
    # each variant's own setting is applied after building and before every one of its steps.
    def set_cudnn_benchmark(spec):
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = spec["cudnn_benchmark"]
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    built = []
    for i, spec in enumerate(specs):
        torch.manual_seed(0)
        rss_before = current_rss_bytes()
        if device.type == "cuda":
            sync()
            torch.cuda.reset_peak_memory_stats()
            allocated_before = torch.cuda.memory_allocated()
        if spec["impl"] == "ours":
            step, config, _ = build_ours(spec, device)
        else:
            step, config, _ = build_reference(spec, device, spec["reference"])
        set_cudnn_benchmark(spec)
        start = time.perf_counter()
        for _ in range(spec["warmup"]):
            step()
        sync()
        warmup_s = time.perf_counter() - start
        if device.type == "cuda":
            peak = torch.cuda.max_memory_allocated() - allocated_before
        else:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - rss_before if i == 0 else None
        built.append((spec, step, config, warmup_s, peak, [], []))

    for _ in range(specs[0]["steps"]):
        for spec, step, config, warmup_s, peak, times, cpu_times in built:
            set_cudnn_benchmark(spec)
            t0, c0 = time.perf_counter(), time.process_time()
            step()
            sync()  # ours syncs through .item(); the reference does not
            times.append(time.perf_counter() - t0)
            cpu_times.append(time.process_time() - c0)
    return [{"images_per_s": len(times) * config.batch_size / sum(times),
             "step_ms_median": 1000 * statistics.median(times), "warmup_s": warmup_s,
             # CPU seconds the process spent per step (all threads): with --threads 1 this barely
             # moves when other programs load the machine, unlike wall time.
             "cpu_ms_median": 1000 * statistics.median(cpu_times),
             "peak_mib": peak / 2**20 if peak is not None else None, "batch_size": config.batch_size,
             "image_size": config.image_size, "ngf": config.ngf, "ndf": config.ndf,
             "threads": torch.get_num_threads()}
            for spec, step, config, warmup_s, peak, times, cpu_times in built]


# --- the driver: one worker process per measurement, ours and the reference alternating ----------
def measure(specs: list[dict]) -> list[dict]:
    """Run `specs` in one fresh worker process; one result per spec."""
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", json.dumps(specs)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")])))
    if specs[0]["device"] == "cpu":  # keep OpenMP's pool the size torch is told to use
        env["OMP_NUM_THREADS"] = str(specs[0]["threads"])
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        names = ", ".join(f"{s['impl']} {s['config']} {s['precision']}" for s in specs)
        raise RuntimeError(f"worker ({names}) failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def variants(args, device_type: str) -> list[dict]:
    """Every (config, implementation, precision, layout, compile, cuDNN autotuning) to measure, ours first."""
    out = []
    tuning = {"on": [True], "off": [False], "both": [True, False]}[args.cudnn_benchmark]
    if device_type != "cuda":
        tuning = [True]  # no cuDNN: one variant each (labelled as the default)
    for config in args.configs.split(","):
        try:
            config_for(config)
        except ValueError as err:
            raise SystemExit(str(err)) from None
        for cudnn_benchmark in tuning:
            common = dict(config=config, cudnn_benchmark=cudnn_benchmark)
            for precision in args.precision.split(","):
                out.append(dict(common, impl="ours", precision=precision, channels_last=False, compile=False))
                if args.channels_last:
                    out.append(dict(common, impl="ours", precision=precision, channels_last=True, compile=False))
                if args.compile:
                    out.append(dict(common, impl="ours", precision=precision, channels_last=args.channels_last,
                                    compile=True))
            size = config_for(config)[1].get("image_size", 128 if config == "quick" else 256)
            if args.reference and size not in (128, 256):
                print(f"{config}: the reference has U-Nets for 128 and 256 px only; not timed there")
            elif args.reference:
                for precision in args.reference_precisions.split(","):
                    out.append(dict(common, impl="reference", precision=precision, channels_last=False,
                                    compile=False))
    return out


def label(v: dict) -> str:
    return (v["impl"] + (" +cl" if v["channels_last"] else "") + (" +compile" if v["compile"] else "")
            + ("" if v.get("cudnn_benchmark", True) else " -cudnn-autotune"))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads on CPU (default 2, the course machine's cores; 1 with --quick)")
    p.add_argument("--configs", default=None, help=f"comma list of {sorted(CONFIGS)} or SIZEbBATCH[nWIDTH] "
                   f"(default: {DEFAULT_CONFIGS['cpu']} on CPU, {DEFAULT_CONFIGS['cuda']} on CUDA)")
    p.add_argument("--precision", default="fp32,bf16", help="comma list of fp32, bf16, fp16 (ours)")
    p.add_argument("--channels-last", action="store_true", help="also time ours with channels-last")
    p.add_argument("--compile", action="store_true", help="also time ours under torch.compile")
    p.add_argument("--cudnn-benchmark", choices=["on", "off", "both"], default="on",
                   help="CUDA: cuDNN autotuning (torch.backends.cudnn.benchmark) for both implementations; "
                        "on = what each sets by itself (default), both = time every variant with and without")
    p.add_argument("--warmup", type=int, default=None,
                   help="untimed steps per worker (default 2; 4 with --compile)")
    p.add_argument("--steps", type=int, default=5, help="timed steps per worker (default 5)")
    p.add_argument("--rounds", type=int, default=3, help="alternating repetitions; the median is shown")
    p.add_argument("--reference", metavar="PATH", help="checkout of pytorch-CycleGAN-and-pix2pix to compare with")
    p.add_argument("--reference-precisions", default="fp32",
                   help="precisions for the reference (anything but fp32 wraps it in autocast; default fp32)")
    p.add_argument("--interleave", choices=["process", "step"], default="process",
                   help="process: a fresh process per variant and round (exact CPU peak memory); step: "
                        "one process per config and round, single steps of every variant alternating "
                        "(tightest comparison on a busy machine)")
    p.add_argument("--quick", action="store_true",
                   help="tiny run to check that it works (< 30 s): quick config, 1+2 steps, one process, 1 thread")
    p.add_argument("--json", metavar="OUT", help="write every measurement to this JSON file")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.worker:  # inside a worker process
        specs = json.loads(args.worker)
        results = run_worker(specs if isinstance(specs, list) else [specs])
        print("RESULT " + json.dumps(results if isinstance(specs, list) else results[0]), flush=True)
        return 0

    import torch
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device visible to torch")
    if args.reference and not os.path.isfile(os.path.join(args.reference, "models", "pix2pix_model.py")):
        raise SystemExit(f"--reference {args.reference}: no models/pix2pix_model.py there "
                         f"(expected a pytorch-CycleGAN-and-pix2pix checkout)")
    if args.quick:
        args.configs = args.configs or "quick"
        args.steps, args.rounds, args.warmup = 2, 1, 1
        args.interleave = "step"  # one worker process: torch is imported once
        # One thread: two OpenMP threads on a busy 2-core machine spin-wait for each other (10x slower).
        args.threads = args.threads or 1
    args.threads = args.threads or 2
    args.configs = args.configs or DEFAULT_CONFIGS[device]
    warmup = args.warmup if args.warmup is not None else (4 if args.compile else 2)

    cpu_name = platform.processor() or platform.machine()
    where = torch.cuda.get_device_name() if device == "cuda" else f"{cpu_name}, {args.threads} threads"
    print(f"torch {torch.__version__} on {device} ({where}); load average {os.getloadavg()[0]:.2f}; "
          f"{warmup} warm-up + {args.steps} timed steps per worker, {args.rounds} rounds")
    todo = variants(args, device)
    results = {i: [] for i in range(len(todo))}
    for config in dict.fromkeys(v["config"] for v in todo):
        mine = [i for i, v in enumerate(todo) if v["config"] == config]
        specs = [dict(todo[i], device=device, threads=args.threads, warmup=warmup, steps=args.steps,
                      reference=args.reference) for i in mine]
        for _ in range(args.rounds):  # A B A B: every variant of this config once per round
            if args.interleave == "step":  # one process, single steps alternating
                for i, result in zip(mine, measure(specs)):
                    results[i].append(result)
            else:  # one process per variant
                for i, spec in zip(mine, specs):
                    results[i].append(measure([spec])[0])
        print_table([(todo[i], results[i]) for i in mine])

    load_after = os.getloadavg()[0]
    print(f"load average at the end {load_after:.2f}")
    if args.json:
        rows = [dict(v, device=device, runs=results[i],
                     images_per_s=statistics.median(r["images_per_s"] for r in results[i]))
                for i, v in enumerate(todo)]
        with open(args.json, "w") as f:
            json.dump({"torch": torch.__version__, "device": device, "where": where, "threads": args.threads,
                       "load_average_end": load_after, "results": rows}, f, indent=1)
        print(f"wrote {args.json}")
    return 0


def print_table(rows: list[tuple[dict, list[dict]]]) -> None:
    """One line per variant: median images/s over the rounds, and its ratio to the reference fp32
    as it runs by itself (cuDNN autotuning on)."""
    median = {id(v): statistics.median(r["images_per_s"] for r in runs) for v, runs in rows}
    refs = [v for v, _ in rows if v["impl"] == "reference" and v["precision"] == "fp32"]
    ref_v = next((v for v in refs if v.get("cudnn_benchmark", True)), refs[0] if refs else None)
    ref = median[id(ref_v)] if ref_v is not None else None
    for v, runs in rows:
        r0 = runs[0]
        spread = f"[{min(r['images_per_s'] for r in runs):.2f}-{max(r['images_per_s'] for r in runs):.2f}]"
        ratio = f"{median[id(v)] / ref:5.2f}x ref fp32" if ref else ""
        print(f"{v['config']:>6} {r0['image_size']:>3}px b{r0['batch_size']:<2} ngf{r0['ngf']:<2} "
              f"{label(v):<20} {v['precision']:<4} {median[id(v)]:8.2f} img/s {spread:<15} "
              f"step {statistics.median(r['step_ms_median'] for r in runs):7.0f} ms "
              f"(cpu {statistics.median(r['cpu_ms_median'] for r in runs):7.0f} ms)  "
              f"peak {peak_text(runs)} MiB  {ratio}", flush=True)


def peak_text(runs: list[dict]) -> str:
    peaks = [r["peak_mib"] for r in runs if r["peak_mib"] is not None]
    return f"{max(peaks):7.0f}" if peaks else "      -"


if __name__ == "__main__":
    sys.exit(main())
