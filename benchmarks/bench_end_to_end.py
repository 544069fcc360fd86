"""End to end: our `fit` against the reference implementation's own loop, on the same pairs.

`bench_train.py` times one training step on a fixed batch; this times what a user waits for: whole
epochs from image files on disk (decode, jitter, batches, steps), per epoch, plus each side's data
loader alone (can decoding keep the GPU fed?). Every measurement runs in a fresh process.

    python benchmarks/bench_end_to_end.py --data DIR --reference /tmp/ref --device cuda \
        --batch-size 16 --epochs 3 --num-workers 8 --json e2e.json
    python benchmarks/bench_end_to_end.py --data DIR --image-size 128 --batch-size 4 --epochs 2 \
        --device cpu --max-pairs 64 --reference /tmp/ref          # does it work? (a minute on a CPU)

DIR holds A|B pair images in `train/` (and `val/` for ours: the reference trains only). The
reference is a checkout of junyanz/pytorch-CycleGAN-and-pix2pix, driven through its own option
parser, `create_dataset`, `create_model` and `optimize_parameters`, exactly as its train.py does
minus the visualiser (no visdom, dominate or wandb needed) and its every-5-epochs checkpoint. Ours
is `pix2pix_lib.fit` with the paper preset at the same size, batch, epochs and loader processes;
its epoch also validates (precise BN, L1/PSNR/SSIM, a sample grid) and writes a checkpoint, so its
epoch wall time is shown beside its training-only images/s. The first epoch includes start-up
(cuDNN autotuning, worker start, our one check of every pair): compare the later epochs.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import types

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def subset(data: str, max_pairs: int | None, workdir: str) -> str:
    """`data`, or a folder of links to its first `max_pairs` train (and val) pairs."""
    if not max_pairs:
        return data
    out = os.path.join(workdir, "pairs")
    for split in ("train", "val"):
        src = os.path.join(data, split)
        if os.path.isdir(src):
            os.makedirs(os.path.join(out, split))
            for name in sorted(os.listdir(src))[:max_pairs]:
                os.symlink(os.path.join(src, name), os.path.join(out, split, name))
    return out


def sync(device: str) -> None:
    import torch
    if device == "cuda":
        torch.cuda.synchronize()


def ours(args) -> dict:
    """`fit` on the pairs: per-epoch wall time (between epoch reports) and training images/s."""
    from pix2pix_lib import fit, preset

    config = preset("paper", image_size=args.image_size, batch_size=args.batch_size, epochs=args.epochs,
                    epochs_decay=0, num_workers=args.num_workers, device=args.device, precision=args.precision,
                    channels_last=args.channels_last)
    epochs, last = [], [time.perf_counter()]

    def on_epoch_end(report) -> None:
        now = time.perf_counter()
        epochs.append({"epoch": report.epoch, "wall_s": now - last[0], "train_images_per_s": report.images_per_s})
        last[0] = now

    with tempfile.TemporaryDirectory(prefix="e2e_ours_") as out:
        fit(config, args.data, os.path.join(out, "run"), on_epoch_end=on_epoch_end, progress=False)
    return {"impl": "ours", "epochs": epochs}


def reference_options(args, workdir: str, argv_extra: list[str]):
    """The reference's options from its own parser, at our settings."""
    sys.path.insert(0, os.path.abspath(args.reference))  # it imports options, models, data, util by name
    for name in ("dominate", "dominate.tags", "visdom", "wandb"):  # only its visualiser uses them
        try:
            __import__(name)
        except ImportError:
            sys.modules[name] = types.ModuleType(name)
    from options.train_options import TrainOptions

    load = round(args.image_size * 286 / 256)  # the paper's jitter: resize to 286, crop 256
    argv = ["train.py", "--dataroot", args.data, "--checkpoints_dir", workdir, "--name", "e2e",
            "--model", "pix2pix", "--netG", f"unet_{args.image_size}", "--direction", "AtoB",
            "--batch_size", str(args.batch_size), "--load_size", str(load), "--crop_size", str(args.image_size),
            "--num_threads", str(args.num_workers), "--gpu_ids", "0" if args.device == "cuda" else "-1",
            "--n_epochs", str(args.epochs), "--n_epochs_decay", "0", "--display_id", "-1", "--no_html",
            *argv_extra]
    saved, sys.argv = sys.argv, argv
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # it prints every option
            return TrainOptions().parse()
    finally:
        sys.argv = saved


def reference(args) -> dict:
    """The reference's train.py loop: set_input + optimize_parameters over its own DataLoader."""
    with tempfile.TemporaryDirectory(prefix="e2e_ref_") as workdir:
        opt = reference_options(args, workdir, [])
        from data import create_dataset
        from models import create_model
        with contextlib.redirect_stdout(io.StringIO()):
            dataset = create_dataset(opt)
            model = create_model(opt)
            model.setup(opt)
        epochs = []
        for epoch in range(1, args.epochs + 1):
            start, n = time.perf_counter(), 0
            model.update_learning_rate() if epoch > 1 else None  # as train.py (its first call only prints)
            for data in dataset:
                model.set_input(data)
                model.optimize_parameters()
                n += len(data["A"])
            sync(args.device)
            wall = time.perf_counter() - start
            epochs.append({"epoch": epoch, "wall_s": wall, "train_images_per_s": n / wall})
    return {"impl": "reference", "epochs": epochs}


def loader_only(args, which: str) -> dict:
    """One epoch of a side's training DataLoader alone: decode + jitter + collate, no networks."""
    start = None
    if which == "ours":
        from pix2pix_lib import preset
        from pix2pix_lib.data.loaders import make_datasets
        from pix2pix_lib.train.batches import make_train_loader
        config = preset("paper", image_size=args.image_size, batch_size=args.batch_size,
                        num_workers=args.num_workers, device=args.device)
        loader = make_train_loader(config, make_datasets(config, args.data)[0], 0)
    else:
        with tempfile.TemporaryDirectory(prefix="e2e_refdata_") as workdir:
            opt = reference_options(args, workdir, [])
        from data import create_dataset
        with contextlib.redirect_stdout(io.StringIO()):
            loader = create_dataset(opt)
    n, start = 0, time.perf_counter()
    for batch in loader:
        n += len(batch["A"])
    wall = time.perf_counter() - start
    return {"impl": f"{which} loader", "epochs": [{"epoch": 1, "wall_s": wall, "train_images_per_s": n / wall}]}


def in_fresh_process(args, job: str) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", job] + args.passthrough
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": REPO})
    if done.returncode != 0:
        raise SystemExit(f"{job} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(results: list[dict]) -> str:
    rows = ["| what | epoch wall s (each) | images/s, later epochs (median) |", "|---|---|---|"]
    for r in results:
        later = r["epochs"][1:] or r["epochs"]
        speed = statistics.median(e["train_images_per_s"] for e in later)
        walls = ", ".join(f"{e['wall_s']:.1f}" for e in r["epochs"])
        rows.append(f"| {r['impl']} | {walls} | {speed:.1f} |")
    return "\n".join(rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="folder with train/ (and val/) A|B pair images")
    p.add_argument("--reference", metavar="PATH", help="checkout of pytorch-CycleGAN-and-pix2pix")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cuda")
    p.add_argument("--image-size", type=int, choices=[128, 256], default=256, help="the reference has U-Nets for these")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--num-workers", type=int, default=8, help="loader processes, both sides")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"], help="ours (the reference: fp32)")
    p.add_argument("--channels-last", action="store_true", help="ours")
    p.add_argument("--max-pairs", type=int, default=None, help="only the first N pairs of each split")
    p.add_argument("--only", default="ours,reference,ours loader,reference loader")
    p.add_argument("--json", metavar="OUT")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args, _ = p.parse_known_args()
    if args.worker:
        job = {"ours": ours, "reference": reference}.get(args.worker)
        result = job(args) if job else loader_only(args, args.worker.split()[0])
        print(json.dumps(result))
        return
    if args.reference is None:
        args.only = ",".join(j for j in args.only.split(",") if not j.startswith("reference"))
    with tempfile.TemporaryDirectory(prefix="e2e_") as workdir:
        data = subset(os.path.abspath(args.data), args.max_pairs, workdir)
        args.passthrough = sys.argv[1:] + ["--data", data, "--max-pairs", "0"]  # the last of each wins
        results = [in_fresh_process(args, job) for job in args.only.split(",")]
    print(f"{args.device}, {args.image_size} px, batch {args.batch_size}, {args.epochs} epochs, "
          f"{args.num_workers} loader processes, ours {args.precision}, the reference fp32")
    print(table(results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": {k: v for k, v in vars(args).items() if k != "passthrough"}, "results": results}, f,
                      indent=1)


if __name__ == "__main__":
    main()
