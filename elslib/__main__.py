"""Command line: ``python -m elslib COMMAND``; every command and its options are listed below.

For learners: ``info``, ``explorers``, ``book``. For instructors: ``student``, ``grade DIR``, ``budget``.
The measurements behind the course: ``train NAME``, ``train-reader``, ``reproduce``, ``quality``,
``phase-diagram``, ``generalisation``, ``label-wins``, ``latent-els``.

``train`` and ``reproduce`` write into their own output folders; ``--record`` (for whoever updates
the course, in a source checkout) also replaces the shipped weights or keeps the run in records/.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time


def info() -> int:
    """Print versions, the device, and which datasets load right now."""
    import numpy
    import torch

    import elslib
    from elslib import data, device

    print(f"elslib      {elslib.__version__}")
    print(f"python      {platform.python_version()} ({platform.system()} {platform.machine()})")
    print(f"torch       {torch.__version__}")
    print(f"numpy       {numpy.__version__}")
    print(f"device      {device.describe()}")
    print("datasets:")
    for name, (_, description) in data.DATASETS.items():
        if not data.available(name):
            print(f"  {name:<14} {'not cached: downloads on first load':<40} {description}")
            continue
        start = time.perf_counter()
        try:
            images, _ = data.load(name)
            status = f"ok   {tuple(images.shape)} ({time.perf_counter() - start:.1f} s)"
        except Exception as err:  # report, do not crash: this command is for diagnosing setups
            status = f"FAILED: {type(err).__name__}: {err}"
        print(f"  {name:<14} {status:<40} {description}")
    return 0


def student(chapters=None, out=None, nbgrader: bool = False) -> int:
    """Write student versions of the chapters (solutions blanked), or nbgrader source versions, and say where."""
    from elslib.course.student import make_nbgrader_versions, make_student_versions

    if nbgrader:
        written = make_nbgrader_versions(chapters, out)
        root = written[0].parents[2]
        print(f"wrote {len(written)} nbgrader assignments to {root / 'source'} (one per chapter):")
        for path in written:
            print(f"  {path.relative_to(root)}")
        print(f"then, in {root}: nbgrader generate_assignment NN_name  (blanks the solutions for release)")
        return 0
    written = make_student_versions(chapters, out)
    print(f"wrote {len(written)} student notebooks to {written[0].parent}:")
    for path in written:
        print(f"  {path.name}")
    return 0


def train_reader(out=None, record: bool = False) -> int:
    """Train the digit reader, write it (to `out`, or the package with `record`) and say how well it reads."""
    from pathlib import Path

    from elslib import pretrained, reader

    if out is not None and record:
        raise ValueError("give --out or --record, not both: --record writes the package's elslib/weights")
    model, meta = reader.train()
    path = reader.WEIGHTS if record else Path(out or pretrained.TRAIN_DIR) / reader.WEIGHTS.name
    reader.save(model, {**meta, "command": "python -m elslib train-reader" + (" --record" if record else "")}, path)
    print(
        f"wrote {path}: accuracy {meta['accuracy']:.3f} on the 1000 held-out digits, "
        f"{meta['held_out_recognisable']:.1%} of them read with probability > {meta['threshold']}"
    )
    return 0


def latent_els(seeds: int, record: bool) -> int:
    """Calibrate, sample and compare, unconditional and conditional; print the table (and record it)."""
    from elslib.text_to_image import latent_els as measure

    results = [measure.compare(seeds=range(seeds), conditional=c) for c in (False, True)]
    print(measure.table(results))
    if record:
        import torch

        from elslib import pretrained, records

        kept = {"conditional" if r["conditional"] else "unconditional": r for r in results}
        for r in kept.values():
            r.pop("samples")
        kept["command"] = f"python -m elslib latent-els --seeds {seeds} --record"
        kept["hardware"] = f"{pretrained.cpu_name()}, {torch.get_num_threads()} threads"
        kept["date"] = time.strftime("%Y-%m-%d")
        print(f"wrote {records.write('text-to-image', 'latent-els', kept)}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m elslib", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="versions, device and which datasets load offline")
    from elslib.pretrained import RECIPES

    train = sub.add_parser("train", help="train a shipped network by its recipe (writes trained-networks/NAME.*)")
    train.add_argument("name", choices=[*RECIPES, "text-to-image", "text-to-image-10"])
    train.add_argument("--steps", type=int, default=None, help="training steps (default: the recipe's)")
    train.add_argument("--out", default=None, help="folder for NAME.pt and NAME.json (default: trained-networks)")
    train.add_argument(
        "--record", action="store_true", help="replace the shipped weights in elslib/weights (updating the course)"
    )
    train.add_argument("--restart", action="store_true", help="ignore an interrupted run's checkpoint")
    rdr = sub.add_parser("train-reader", help="train the digit reader (writes trained-networks/digit-reader.*)")
    rdr.add_argument("--out", default=None, help="folder for digit-reader.pt and .json (default: trained-networks)")
    rdr.add_argument("--record", action="store_true", help="replace the shipped reader in elslib/weights")
    qua = sub.add_parser(
        "quality", help="do the shipped networks' samples read as digits? (digit reader, Frechet distance)"
    )
    qua.add_argument("--seeds", type=int, default=None, help="samples per network (default 256)")
    qua.add_argument(
        "--names", nargs="*", default=None, help="which shipped networks (default: those trained on all 5,000 digits)"
    )
    qua.add_argument("--record", action="store_true", help="also keep the numbers in records/quality")
    qua.add_argument("--checkpoints", default=None, help="judge a training run's records (NAME-stepN.pt) instead")
    qua.add_argument(
        "--r-seeds",
        type=int,
        default=None,
        help="with --checkpoints: also r with the IS, LS and ELS machines over this many seeds (the shipped "
        "NAME's P(t); the machines' samples are those of `reproduce`, kept in reproduce-results/chunks)",
    )
    rep = sub.add_parser("reproduce", help="the paper's Table 1 on the shipped networks: CNN vs IS, LS, ELS")
    rep.add_argument("--quick", action="store_true", help="8 seeds instead of 100 (minutes, not hours)")
    rep.add_argument("--seeds", type=int, default=None, help="how many seeds (default: 8 with --quick, else 100)")
    rep.add_argument(
        "--names", nargs="*", default=None, help="which shipped networks (default: those with calibrated scales)"
    )
    rep.add_argument("--out", default="reproduce-results", help="folder for RESULTS.md, results.json, figures")
    rep.add_argument(
        "--record",
        action="store_true",
        help="also keep the summaries in records/reproduction (and a new calibration in the shipped metadata)",
    )
    pha = sub.add_parser(
        "phase-diagram", help="when do the machines copy? copy fraction and novelty over N and P (resumable)"
    )
    pha.add_argument("--seeds", type=int, default=8, help="seeds per cell, the same for every cell (default 8)")
    pha.add_argument("--sizes", type=int, nargs="+", default=None, help="training-set sizes N (default: 1 ... 5000)")
    pha.add_argument(
        "--patches",
        nargs="+",
        default=None,
        help="ELS patch sizes, 'whole' for the ideal machine (default: 3 ... 15 whole)",
    )
    pha.add_argument("--out", default="phase-diagram", help="folder for the cells, phase-diagram.json and samples.pt")
    lat = sub.add_parser(
        "latent-els", help="does the ELS machine on training latents predict the text-to-image latent denoiser?"
    )
    lat.add_argument("--seeds", type=int, default=32, help="evaluation seeds 0 .. N-1 (default 32)")
    lat.add_argument("--record", action="store_true", help="also keep the numbers in records/text-to-image")
    lab = sub.add_parser("label-wins", help="does a class-conditional denoiser draw the digit it is asked for?")
    lab.add_argument("--seeds", type=int, default=20, help="seeds 0 .. N-1, each drawn as all ten digits (default 20)")
    lab.add_argument("--per-class", type=int, default=100, help="training digits of each class (default 100)")
    lab.add_argument("--record", action="store_true", help="also keep the table in records/conditioning")
    lab.add_argument(
        "--only", nargs="+", default=None, help="measure only these rows (their names as the table prints them)"
    )
    gen = sub.add_parser(
        "generalisation", help="do networks trained on 10 ... 5000 digits copy? do two on disjoint sets agree?"
    )
    gen.add_argument("--seeds", type=int, default=None, help="seeds 0 .. N-1 for every network (default 16)")
    gen.add_argument("--names", nargs="*", default=None, help="which networks (default: all of chapter 09's)")
    gen.add_argument(
        "--record", action="store_true", help="also keep the numbers and samples in records/generalisation"
    )
    stu = sub.add_parser("student", help="write student versions of the chapters, with the solutions blanked")
    stu.add_argument("--out", default=None, help="output folder (default: student/ beside chapters/)")
    stu.add_argument("--chapters", default=None, help="folder of chapter notebooks (default: ./chapters)")
    stu.add_argument(
        "--nbgrader",
        action="store_true",
        help="write nbgrader source versions instead (OUT/source/NN_name/; default OUT: student/nbgrader)",
    )
    grd = sub.add_parser("grade", help="run every submitted student notebook and write a CSV of each exercise's grade")
    grd.add_argument("submissions", help="folder of submitted notebooks (one folder per student, or one file each)")
    grd.add_argument("--out", default="grades.csv", help="the CSV to write (default: grades.csv)")
    grd.add_argument("--timeout", type=float, default=600, help="seconds one notebook may run (default: 600)")
    grd.add_argument("--fast", action="store_true", help="run the notebooks in fast mode (ELS_FAST=1)")
    app = sub.add_parser("explorers", help="every explorer on its own tab, as a web app for a projector (Voila)")
    app.add_argument("--port", type=int, default=8866, help="port on 127.0.0.1 (default 8866; 0: any free port)")
    app.add_argument("--fast", action="store_true", help="the smallest sizes (as ELS_FAST=1 does)")
    bud = sub.add_parser("budget", help="does each chapter fit its 90-minute session? (words, exercises, prompts)")
    bud.add_argument("--chapters", default=None, help="folder of chapter notebooks (default: ./chapters)")
    boo = sub.add_parser("book", help="run every chapter and build the course as a static website that works offline")
    boo.add_argument("--out", required=True, help="folder for the site (replaced if it holds a built site)")
    boo.add_argument("--fast", action="store_true", help="run the chapters in fast mode (ELS_FAST=1), as CI does")
    boo.add_argument("--chapters", default=None, help="folder of chapter notebooks (default: the course's chapters/)")
    boo.add_argument("--timeout", type=float, default=1800, help="seconds one cell may run (default: 1800)")
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except (ValueError, FileNotFoundError) as err:  # a user's mistake: one line on stderr, exit status 2
        parser.error(str(err))


def _run(args) -> int:
    if args.command == "grade":
        from collections import Counter

        from elslib.course import grade

        if not args.timeout > 0:
            raise ValueError(f"--timeout must be a positive number of seconds, got {args.timeout}")
        rows = grade.grade(args.submissions, args.out, timeout=args.timeout, fast=args.fast)
        counts = Counter(r.status for r in rows)
        print(f"wrote {args.out}: " + ", ".join(f"{counts[s]} {s}" for s in grade.STATUSES))
        return 0
    if args.command == "explorers":
        from elslib.course import app

        return app.serve(args.port, fast=True if args.fast else None)
    if args.command == "budget":
        from elslib.course import budget

        print(budget.report(args.chapters))
        return 0
    if args.command == "book":
        from elslib.course import book

        if not args.timeout > 0:
            raise ValueError(f"--timeout must be a positive number of seconds, got {args.timeout}")
        done = book.make(args.out, fast=args.fast, chapters_dir=args.chapters, timeout=args.timeout)
        print(
            f"built {done['chapters']} chapters in {done['execute_s'] + done['build_s']:.0f} s "
            f"(executing {done['execute_s']:.0f} s, building {done['build_s']:.0f} s), "
            f"{done['bytes'] / 2**20:.1f} MiB: open {done['index']}"
        )
        return 0
    if args.command == "info":
        return info()
    if args.command == "train" and args.name == "text-to-image-10":
        from elslib.text_to_image import overfitting

        if args.restart:
            raise ValueError("--restart is for the denoising networks; text-to-image-10 trains in one run")
        path = overfitting.train(out_dir=args.out, record=args.record, steps=args.steps)
        print(f"wrote {path} and {path.with_suffix('.json')}")
        return 0
    if args.command == "latent-els":
        return latent_els(args.seeds, args.record)
    if args.command == "label-wins":
        from elslib import conditioning

        results = conditioning.run(args.seeds, args.per_class, record=args.record, only=args.only)
        print(conditioning.table(results, args.seeds, args.per_class))
        return 0
    if args.command == "generalisation":
        from elslib import generalisation

        seeds = generalisation.SEEDS if args.seeds is None else args.seeds
        result = generalisation.run(seeds, only=args.names, record=args.record)
        print(generalisation.table(result))
        return 0
    if args.command == "train" and args.name == "text-to-image":
        from elslib.text_to_image import recipe

        if args.steps is not None or args.restart:
            raise ValueError("--steps and --restart are for the denoising networks; text-to-image trains by its recipe")
        path = recipe.train(out_dir=args.out, record=args.record)
        print(f"wrote {path} and {path.with_suffix('.json')}")
        return 0
    if args.command == "train":
        from elslib import pretrained

        path = pretrained.train(
            args.name, steps=args.steps, out_dir=args.out, resume=not args.restart, record=args.record
        )
        print(f"wrote {path} and {path.with_suffix('.json')}")
        return 0
    if args.command == "quality":
        from elslib import quality

        if args.checkpoints is not None:
            rows = quality.run_along_training(args.checkpoints, args.seeds, args.r_seeds, record=args.record)
            print(quality.training_table(rows))
            return 0
        if args.r_seeds is not None:
            raise ValueError("--r-seeds is for a training run's records: give --checkpoints DIR too")
        print(quality.run(args.names, args.seeds or quality.SEEDS, record=args.record))
        return 0
    if args.command == "train-reader":
        return train_reader(args.out, args.record)
    if args.command == "student":
        return student(args.chapters, args.out, nbgrader=args.nbgrader)
    if args.command == "phase-diagram":
        from elslib import memorisation

        patches = memorisation.PATCHES if args.patches is None else [_patch_arg(p) for p in args.patches]
        result = memorisation.phase_diagram(
            args.sizes or memorisation.SIZES, patches, seeds=args.seeds, out_dir=args.out
        )
        print(f"copy fraction (a copy: nearest training image closer than {result['threshold']:.3f} RMS)")
        print(memorisation.table(result, "copy_fraction"))
        print("\nmedian distance to the nearest training image (RMS)")
        print(memorisation.table(result, "median_nn"))
        print(f"\nwrote {args.out}/phase-diagram.json and samples.pt")
        return 0
    if args.command == "reproduce":
        from elslib import reproduce

        print(
            reproduce.run(
                quick=args.quick, names=args.names, out_dir=args.out, seeds=args.seeds, record_runs=args.record
            )
        )
        return 0
    return 2  # pragma: no cover - argparse rejects unknown commands first


def _patch_arg(text: str) -> int | None:
    """--patches: an odd integer, or 'whole' for the ideal machine."""
    if text == "whole":
        return None
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"--patches takes odd integers or 'whole', got {text!r}") from None


if __name__ == "__main__":
    sys.exit(main())
