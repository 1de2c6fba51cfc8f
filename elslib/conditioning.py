"""Does the label win? How often a class-conditional denoiser draws the digit it is asked for.

    python -m elslib label-wins                # the conditional machines, 20 seeds x 10 labels
    python -m elslib label-wins --record       # also keep the table in records/conditioning/label-wins.json

A class-conditional denoiser is called with ``label=k`` (a machine built with labels restricts its
candidates to the training digits of class k; see chapter 08, section 3). :func:`obedience`
samples it from the same seeds for every label and lets the course's digit reader judge: a sample
*obeys* when the reader reads it confidently (probability above ``reader.THRESHOLD``) as k.

The question behind it: a local patch of a 3 can also be a patch of an 8. When the machine's
patches are small, restricting them to one class may not carry the class's identity into the
image; when they are large, it must. :func:`settings` lists the denoisers measured: the
conditional ELS machine at the shipped networks' calibrated P(t) and at constant P, with and
without classifier-free guidance (``denoisers.Guided``), the conditional ideal machine, which
copies a training digit of the class and so sets the scale from above, and the shipped
class-conditional networks themselves: does the machine predict which of them obey?
"""

from __future__ import annotations

import itertools
import math
import time

import torch

from . import data, denoisers, machines, metrics, networks, pretrained, reader, records, sampling
from .checks import check_integer, check_number, check_positive_int, check_seed, check_sequence

SEEDS = 20  # seeds 0 .. 19, each drawn as all ten digits
PER_CLASS = 100  # training digits of each class the machines hold
GUIDANCE = 3.0  # the guidance weight of the guided rows (w = 1 is plain conditioning)
SWEEP_WEIGHTS = (0.0, 1.0, 3.0, 5.0)  # chapter 08's guidance weights: none, plain conditioning, two guided


def obedience(denoiser, seeds, labels=range(10), steps: int = 20, progress: bool = False) -> dict:
    """Sample a class-conditional `denoiser` from each seed once per label (DDIM, `steps` steps)
    and read the samples with the digit reader.

    Returns ``obeys`` (the fraction read confidently as the requested label), ``reads_as_digit``
    (read confidently as any digit), ``per_label`` (the obeying fraction for each label, in the
    order of `labels`), and ``samples`` [len(seeds) x len(labels), 1, 32, 32], seed-major (the
    labels of one seed are consecutive), with ``requested`` (the label of each sample), ``read`` (the
    reader's most likely digit), ``confidence`` (its probability) and ``obeyed`` (each sample's verdict, bool).
    """
    seeds, labels = [int(s) for s in seeds], [int(k) for k in labels]
    if not seeds or not labels:
        raise ValueError(f"seeds and labels must each hold at least one value, got {len(seeds)} and {len(labels)}")
    iterator = seeds
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(seeds, desc="seeds (all labels each)")
    out = []
    for seed in iterator:
        noise = sampling.noise_like((1, 1, 32, 32), seed=seed).repeat(len(labels), 1, 1, 1)
        out.append(sampling.ddim(denoiser, noise, steps=steps, label=labels, progress=False))
    samples = torch.cat(out)
    requested = torch.tensor(labels).repeat(len(seeds))
    read, confidence = reader.read(samples)
    sure = confidence > reader.THRESHOLD
    obeys = _obeys(read, confidence, requested)
    per_label = obeys.view(len(seeds), len(labels)).double().mean(0)
    return {
        "obeys": float(obeys.double().mean()),
        "reads_as_digit": float(sure.double().mean()),
        "per_label": [float(v) for v in per_label],
        "samples": samples,
        "requested": requested,
        "read": read,
        "confidence": confidence,
        "obeyed": obeys,
    }


def _verdicts(row_a: dict, row_b: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """The two rows' verdicts as bool tensors [seeds, labels] (seed-major, as :func:`run` keeps them),
    checked: the same whole seeds of the same labels."""
    out = []
    for name, row in (("row_a", row_a), ("row_b", row_b)):
        obeyed, per_label = row.get("obeyed"), row.get("per_label")
        if not isinstance(obeyed, (list, tuple)) or not obeyed or not per_label or len(obeyed) % len(per_label):
            got = f"{len(obeyed)} verdicts" if isinstance(obeyed, (list, tuple)) else repr(obeyed)[:40]
            raise ValueError(
                f"{name} must hold 'obeyed', a list of verdicts for whole seeds of the labels in 'per_label', "
                f"got {got} and per_label {per_label!r}"
            )
        out.append(torch.tensor(obeyed, dtype=torch.bool).view(-1, len(per_label)))
    if out[0].shape != out[1].shape:
        raise ValueError(
            f"row_a and row_b must hold verdicts for the same seeds and labels, got [seeds, labels] "
            f"{list(out[0].shape)} and {list(out[1].shape)}"
        )
    return out[0], out[1]


def agreement(row_a: dict, row_b: dict) -> tuple[float, float]:
    """How often two stored rows (of the same seeds and labels) agree on whether a sample obeys: the
    fraction of (seed, label) pairs where both obey or neither does, and the fraction two independent
    denoisers with the same obedience rates would agree on by chance, p_a p_b + (1 - p_a)(1 - p_b)."""
    a, b = _verdicts(row_a, row_b)
    p_a, p_b = float(a.double().mean()), float(b.double().mean())
    return float((a == b).double().mean()), p_a * p_b + (1 - p_a) * (1 - p_b)


def rare_agreement(row_a: dict, row_b: dict) -> dict:
    """Where `agreement` says little because both rows nearly always fail (or obey): of the samples whose
    verdict is the rarer one for `row_a` (obeying when fewer than half of its samples obey, failing
    otherwise), how many have it in `row_b` too, against what independence would give.

    Returns ``verdict`` ("obey" or "fail", the rarer one of `row_a`), ``a`` and ``b`` (how many samples of
    each row have it), ``both`` (how many have it in both rows), ``chance`` (the ``both`` expected of two
    denoisers that pick their samples independently *within each label*: sum over labels k of
    a_k b_k / seeds, so that two rows which both obey only on the easy labels are not credited for it) and
    ``beyond_chance``: at least 2 shared and more than chance + 2 sqrt(chance), two standard deviations of
    a Poisson count (a rule of thumb, not a test)."""
    a, b = _verdicts(row_a, row_b)
    verdict = "obey" if a.double().mean() < 0.5 else "fail"
    if verdict == "fail":
        a, b = ~a, ~b
    both = int((a & b).sum())
    chance = float((a.double().sum(0) * b.double().sum(0)).sum()) / len(a)
    beyond = both >= 2 and both > chance + 2 * math.sqrt(chance)
    return {
        "verdict": verdict,
        "a": int(a.sum()),
        "b": int(b.sum()),
        "both": both,
        "chance": chance,
        "beyond_chance": beyond,
    }


def guidance_turned(plain_row: dict, guided_row: dict) -> tuple[int, int] | None:
    """The first sample that obeys in `guided_row` but not in `plain_row` (two stored rows of one denoiser,
    without and with guidance, over the same seeds and labels, seed-major as :func:`run` keeps them), as
    (seed index, label index): the seed and the digit themselves for :func:`run`'s rows, whose seeds are
    0, 1, ... and labels 0 ... 9. None when guidance turned no sample."""
    plain, guided = _verdicts(plain_row, guided_row)
    turned = (guided & ~plain).flatten().nonzero()
    return None if len(turned) == 0 else divmod(int(turned[0]), plain.shape[1])


def own_machine_row(rows: dict, network: str) -> str | None:
    """The name of the ELS machine's row at `network`'s calibrated P(t) among `rows` ("ELS, P(t) of NAME
    (largest N)", as :func:`settings` names it; not its guided row), or None when `rows` has none."""
    own = [name for name in rows if name.startswith(f"ELS, P(t) of {network} (")]
    return own[0] if own else None


def which_obeys_more(rows: dict, margin: float = 0.1) -> dict | None:
    """Does the ELS machine predict *which* conditional network obeys its label more often? For every
    network in :data:`CONDITIONAL_NETWORKS` that has both its own row ("network NAME") and the machine's
    row at its calibrated P(t) (:func:`own_machine_row`) among `rows` (:func:`stored` or :func:`run`), the
    two obedience rates; None when fewer than two networks have both.

    Returns ``networks`` and ``machines`` ({network: fraction obeying}) and ``verdict``. Each pair of
    networks is ordered by the networks' rates and by the machines' (a difference of at most `margin`,
    0 <= margin < 1, counts as a tie): "same order" when every pair is ordered alike and some pair is not a
    tie, "all tied" when every pair is a tie on both sides (neither obeys more, and the machines agree),
    else "different order" (a tie on one side against an order on the other included)."""
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not 0 <= margin < 1:
        raise ValueError(f"margin must be a number from 0 to below 1 (a difference of obedience rates), got {margin!r}")
    nets, machs = {}, {}
    for net in CONDITIONAL_NETWORKS:
        own = own_machine_row(rows, net)
        if f"network {net}" in rows and own is not None:
            nets[net], machs[net] = rows[f"network {net}"]["obeys"], rows[own]["obeys"]
    if len(nets) < 2:
        return None

    def order(rates, a, b):
        gap = rates[a] - rates[b]
        return 0 if abs(gap) <= margin else (1 if gap > 0 else -1)

    orders = [(order(nets, a, b), order(machs, a, b)) for a, b in itertools.combinations(nets, 2)]
    if all(by_net == by_machine == 0 for by_net, by_machine in orders):
        verdict = "all tied"
    elif all(by_net == by_machine for by_net, by_machine in orders):
        verdict = "same order"
    else:
        verdict = "different order"
    return {"networks": nets, "machines": machs, "verdict": verdict}


def _obeys(read: torch.Tensor, confidence: torch.Tensor, requested) -> torch.Tensor:
    """The rule of this module: a sample obeys when the reader reads it as the requested digit, confidently."""
    return (read == requested) & (confidence > reader.THRESHOLD)


def guidance_sweep(denoisers_by_name: dict, seed: int, label: int, weights=SWEEP_WEIGHTS, steps: int = 20) -> dict:
    """Classifier-free guidance, weight by weight, for several class-conditional denoisers from one noise.

    Every denoiser in `denoisers_by_name` ({name: D(x_t, t, label=...)}, a machine built with labels or a
    class-conditional network as a denoiser) is wrapped in ``denoisers.Guided(D, w)`` for each w in
    `weights` and sampled by DDIM (`steps` steps) from the noise of `seed`, asked for digit `label`.

    Returns ``samples`` {name: [len(weights), 1, 32, 32]} (row i at weights[i]), ``read`` and
    ``confidence`` {name: [len(weights)]} (the digit reader's most likely digit, its probability),
    ``obeys`` {name: [len(weights)] bool} (read as `label` with probability above ``reader.THRESHOLD``)
    and, with two or more denoisers, ``r`` [len(weights)]: Pearson's r between the first two names'
    samples at each weight.
    """
    if not isinstance(denoisers_by_name, dict) or not denoisers_by_name:
        raise ValueError(f"denoisers_by_name must be a non-empty dict {{name: denoiser}}, got {denoisers_by_name!r}")
    seed = check_seed(seed)
    label = check_integer(label, "label", low=0)
    if label > 9:
        raise ValueError(f"label must be a digit 0 ... 9, got {label}")
    weights = [check_number(w, "weights[i] (guidance weight)") for w in check_sequence(weights, "weights")]
    noise = sampling.noise_like((1, 1, 32, 32), seed=seed)
    out = {"samples": {}, "read": {}, "confidence": {}, "obeys": {}, "weights": weights, "label": label}
    for name, denoiser in denoisers_by_name.items():
        rows = [
            sampling.ddim(denoisers.Guided(denoiser, w), noise, steps=steps, label=label, progress=False)
            for w in weights
        ]
        samples = torch.cat(rows)
        read, confidence = reader.read(samples)
        out["samples"][name], out["read"][name], out["confidence"][name] = samples, read, confidence
        out["obeys"][name] = _obeys(read, confidence, label)
    names = list(denoisers_by_name)
    if len(names) >= 2:
        out["r"] = metrics.pearson_r(out["samples"][names[0]], out["samples"][names[1]])
    return out


CONDITIONAL_NETWORKS = ("resnet-conditional", "unet-conditional")  # trained with label dropout (chapter 08)


def settings() -> dict[str, dict]:
    """The denoisers :func:`run` measures, by row name: {name: {"kind", "patch_size", "weight"}} (kind "IS",
    "ELS", or "network" with its "network" name). Rows at a shipped network's P(t), and the class-conditional
    networks' own rows, appear only when that network and its calibration are installed."""
    rows = {"ideal machine (copies a digit of the class)": dict(kind="IS", patch_size=None, weight=1.0)}
    for name in ("resnet-zeros", "unet-zeros", *CONDITIONAL_NETWORKS):
        scales = pretrained.calibrated_scales(name)
        if scales is None:
            continue
        largest = max(scales.patch_sizes)
        for weight, suffix in ((1.0, f" (largest {largest})"), (GUIDANCE, f", guidance w = {GUIDANCE:g}")):
            rows[f"ELS, P(t) of {name}{suffix}"] = dict(kind="ELS", patch_size=scales, weight=weight, scales_of=name)
    for p in (15, 25):
        rows[f"ELS, constant P = {p}"] = dict(kind="ELS", patch_size=p, weight=1.0)
    for name in CONDITIONAL_NETWORKS:
        if name in pretrained.available():
            for weight, suffix in ((1.0, ""), (GUIDANCE, f", guidance w = {GUIDANCE:g}")):
                rows[f"network {name}{suffix}"] = dict(kind="network", network=name, patch_size=None, weight=weight)
    return rows


def run(seeds: int = SEEDS, per_class: int = PER_CLASS, record: bool = False, progress: bool = True, only=None) -> dict:
    """Measure every row of :func:`settings` (or those named in `only`) on the seeds 0 .. seeds - 1
    and `per_class` training digits of each class; returns {row: summary without the samples}.
    With `record`, the rows are kept in records/conditioning/label-wins.json (with `only`, beside the rows
    an earlier run of the same seeds and digits kept)."""
    seeds = check_positive_int(seeds, "seeds")
    per_class = check_positive_int(per_class, "per_class")
    if per_class * 10 > 5000:
        raise ValueError(f"per_class must be at most 500 (MNIST-5000 holds 500 of each digit), got {per_class}")
    rows = settings()
    if only is not None:
        unknown = [name for name in only if name not in rows]
        if unknown:
            raise ValueError(f"only: unknown rows {unknown}; choose from {list(rows)}")
        rows = {name: rows[name] for name in only}
    if record:
        records.folder()  # fail now, not after the sampling
    images, labels = data.load("mnist", n=10 * per_class)  # class-balanced
    results = {}
    for name, how in rows.items():
        if progress:
            print(name, flush=True)
        start = time.perf_counter()
        if how["kind"] == "IS":
            base = machines.IdealDenoiser(images, labels=labels)
        elif how["kind"] == "network":  # trained on all of MNIST-5000; `per_class` concerns the machines only
            base = networks.as_denoiser(pretrained.load(how["network"]))
        else:
            base = machines.ELSDenoiser(images, patch_size=how["patch_size"], padding="zeros", labels=labels)
        denoiser = denoisers.Guided(base, how["weight"]) if how["weight"] != 1.0 else base
        row = obedience(denoiser, range(seeds), progress=progress)
        results[name] = {k: row[k] for k in ("obeys", "reads_as_digit", "per_label")} | {
            "obeyed": row["obeyed"].int().tolist(),  # seed-major, the ten labels of a seed together
            "seconds": round(time.perf_counter() - start, 1),
            **_measured_with(how),
        }
    if record:
        stored = records.read("conditioning", "label-wins")
        key = f"seeds-{seeds}-per-class-{per_class}"
        earlier = stored.get(key, {}).get("rows", {}) if only is not None else {}  # a run of some rows adds them
        stored[key] = {
            "rows": {**earlier, **results},
            "command": f"python -m elslib label-wins --seeds {seeds} --per-class {per_class} --record",
            "date": time.strftime("%Y-%m-%d"),
            "machine": f"{pretrained.cpu_name()}, {torch.get_num_threads()} threads",
        }
        records.write("conditioning", "label-wins", stored)
    return results


def _measured_with(how: dict) -> dict:
    """What a row's numbers depend on besides the seeds and digits: a network's weights, or the P(t) it borrows."""
    if how["kind"] == "network":
        return {"network": how["network"], "weights_sha256": pretrained.metadata(how["network"])["sha256"]}
    if "scales_of" in how:
        return {"scales_of": how["scales_of"], "patch_sizes": list(how["patch_size"].patch_sizes)}
    return {}


def _still_valid(row: dict) -> bool:
    """False for a row measured with weights or a P(t) that the installed networks no longer have."""
    if "weights_sha256" in row:
        name = row["network"]
        return name in pretrained.available() and pretrained.metadata(name).get("sha256") == row["weights_sha256"]
    if "patch_sizes" in row:
        scales = pretrained.calibrated_scales(row["scales_of"])
        return scales is not None and list(scales.patch_sizes) == row["patch_sizes"]
    return True


def stored(seeds: int = SEEDS, per_class: int = PER_CLASS) -> dict:
    """The rows a recorded run kept ({} when none was recorded for these numbers), less those measured with
    a network's weights or a calibrated P(t) that has changed since (retrained, recalibrated)."""
    rows = records.read("conditioning", "label-wins").get(f"seeds-{seeds}-per-class-{per_class}", {}).get("rows", {})
    return {name: row for name, row in rows.items() if _still_valid(row)}


def table(results: dict, seeds: int = SEEDS, per_class: int = PER_CLASS) -> str:
    """A Markdown table of :func:`run`'s rows."""
    lines = [
        "| denoiser (class-conditional) | draws the digit asked for | reads as some digit | worst label |",
        "|---|---|---|---|",
    ]
    for name, row in results.items():
        worst = min(range(len(row["per_label"])), key=lambda k: row["per_label"][k])
        lines.append(
            f"| {name} | {row['obeys']:.0%} | {row['reads_as_digit']:.0%} | {worst} ({row['per_label'][worst]:.0%}) |"
        )
    note = (
        f"\n{seeds} seeds x 10 labels, DDIM 20 steps; the machines hold {per_class} training digits of each class, "
        "the networks were trained on all 5000; "
        f"'draws the digit asked for' = the course's digit reader reads it as the label with p > {reader.THRESHOLD}.\n"
    )
    return "\n".join(lines) + note
