"""The prior's levers, measured: paired gains of Dirac-DO between models on the same test measurements.

Reads ``compare.json`` files of ``python sample.py mode=compare`` (same split, same seed: the same measurements),
one per model variant, and reports for each variant against the first (the baseline):

* DO PSNR with its 95 % bootstrap interval, and the **paired** gain over a reference variant's DO (per-image
  differences, bootstrap over images: tighter than comparing two intervals); the reference is the first variant
  unless ``--ref LABEL=REF`` names another, so one table can measure each lever on its own against the recipe
  it was added to;
* the margin of DO over Tikhonov with λ tuned on val (paired, same file) — the issue's target;
* PO's perceptual distance against DO's (PO must stay more realistic).

``PATH#ROW`` makes another row of the file stand for the variant (e.g. ``compare.json#dirac_do+dihedral``, a
self-ensemble row, or ``#regressor``), compared against the same Tikhonov row.

Writes ``bench/prior_ablation.json`` (one entry per task, other tasks' entries kept) and ``bench/prior_ablation.md``.
``--append`` keeps the task's table and adds the variants not yet in it; a variant whose label is already there
serves only as a reference (its file must reproduce the recorded DO PSNR: same model, same measurements).
``--rename OLD=NEW`` relabels rows of a task's existing table without its ``compare.json`` files (run folders
are not kept; e.g. "candidate" becomes "shipped now" once that model ships): the figures stay as measured.

    python bench/prior_ablation.py --task blur --variant "shipped before=runs/old/compare.json" \\
        --variant "cosine=runs/cos/compare.json" --variant "cosine + aug=runs/aug/compare.json" \\
        --ref "cosine + aug=cosine"
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from dirac.evaluation.intervals import bootstrap_mean
from dirac.io import atomic_write, write_json

OUT = Path(__file__).resolve().parent / "prior_ablation.json"


def _rows(path: Path, row: str = "dirac_do") -> dict[str, dict[str, Any]]:
    """The file's rows with ``row`` standing as ``dirac_do`` (the variant's row)."""
    doc = json.loads(Path(path).read_text())
    rows = {r["method"]: r for r in doc["rows"]}
    for need in (row, "tikhonov"):
        if need not in rows or "psnr_per_image" not in rows[need]:
            raise SystemExit(f"error: {path} has no {need} row with per-image PSNR; rerun mode=compare with this dirac")
    return {**rows, "dirac_do": {**rows[row], "row": row}}


def paired(a: list[float], b: list[float], seed: int = 0) -> dict[str, Any]:
    """Mean of ``a − b`` over images with its 95 % percentile-bootstrap interval."""
    if len(a) != len(b):
        raise SystemExit("error: the compare.json files hold different numbers of images; use one split/num_images")
    d = np.asarray(a) - np.asarray(b)
    lo, hi = bootstrap_mean(d.tolist(), seed=seed)
    return {"mean": float(d.mean()), "ci": [lo, hi]}


def variant_entry(
    label: str, path: Path, rows: dict[str, dict[str, Any]], ref: str, base: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """One table row from the ``rows`` read from ``path``; ``base``: the rows of the reference variant ``ref``.
    Only the run folder's name of ``path`` is recorded (local paths say nothing on another machine)."""
    do, tik = rows["dirac_do"], rows["tikhonov"]
    entry = {
        "variant": label, "compare_json": f"{path.parent.name}/{path.name}", "row": do.get("row", "dirac_do"),
        "num_images": len(do["psnr_per_image"]),
        "do_psnr": do["psnr"], "do_psnr_ci": do["psnr_ci"], "do_params": do["params"], "reference": ref,
        "gain_over_reference_db": paired(do["psnr_per_image"], base["dirac_do"]["psnr_per_image"]),
        "tikhonov_val_psnr": tik["psnr"], "tikhonov_lam": tik["params"].get("lam"),
        "margin_over_tikhonov_db": paired(do["psnr_per_image"], tik["psnr_per_image"]),
        "perceptual_metric": do["perceptual_metric"], "do_perceptual": do["perceptual"],
    }  # fmt: skip
    if "dirac_po" in rows and entry["row"] == "dirac_do":  # PO belongs to the model, not to another row
        entry["po_psnr"], entry["po_perceptual"] = rows["dirac_po"]["psnr"], rows["dirac_po"]["perceptual"]
    return entry


def _ci(d: dict[str, Any]) -> str:
    return f"{d['mean']:+.2f} [{d['ci'][0]:+.2f}, {d['ci'][1]:+.2f}]"


def markdown(doc: dict[str, Any]) -> str:
    lines = ["# Prior ablation: Dirac-DO on the unchanged test splits", "",
             "Paired 95 % bootstrap intervals over test images (same measurements for every variant). Tikhonov: "
             "λ tuned on the validation split. Written by `bench/prior_ablation.py` from `mode=compare` outputs.",
             ""]  # fmt: skip
    for task, entries in doc.items():
        perc = entries[0]["perceptual_metric"].upper()
        lines += [f"## {task} ({entries[0]['num_images']} test images)", "",
                  f"| variant | DO PSNR (dB) | gain (dB) | over | DO − Tikhonov (dB) | PO PSNR | PO {perc} "
                  f"| DO {perc} |",
                  "|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for e in entries:
            po = f"{e['po_psnr']:.2f} | {e['po_perceptual']:.1f}" if "po_psnr" in e else "– | –"
            over = "–" if e["reference"] == e["variant"] else e["reference"]
            lines.append(f"| {e['variant']} | {e['do_psnr']:.2f} | {_ci(e['gain_over_reference_db'])} | {over} | "
                         f"{_ci(e['margin_over_tikhonov_db'])} | {po} | {e['do_perceptual']:.1f} |")  # fmt: skip
        lines.append("")
    return "\n".join(lines)


def _label_pair(text: str, known: set[str], flag: str) -> tuple[str, str]:
    """``LABEL=OTHER`` where labels may hold "=" themselves: the one split whose left side is a known label."""
    splits = [(text[:i], text[i + 1 :]) for i, ch in enumerate(text) if ch == "="]
    hits = [(a, b) for a, b in splits if a in known]
    if len(hits) != 1:
        raise SystemExit(f"error: {flag} {text!r} must be LABEL=... with LABEL a variant of the table")
    return hits[0]


def rename(entries: list[dict[str, Any]], pairs: list[str]) -> list[dict[str, Any]]:
    """The entries with variant labels (and the references to them) renamed by ``OLD=NEW`` pairs."""
    labels = {e["variant"] for e in entries}
    pairs_found = [_label_pair(r, labels, "--rename") for r in pairs]
    names = dict(pairs_found)
    if len(names) < len(pairs_found):
        twice = sorted({a for a, _ in pairs_found if sum(b == a for b, _ in pairs_found) > 1})
        raise SystemExit(f"error: --rename names {twice} twice; give each row one new label")
    clash = (labels - set(names)) & set(names.values())
    if clash or len(set(names.values())) < len(names):
        raise SystemExit(f"error: --rename would give two rows one label ({sorted(clash) or 'two NEW alike'})")
    return [{**e, "variant": names.get(e["variant"], e["variant"]),
             "reference": names.get(e["reference"], e["reference"])} for e in entries]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", required=True, help="table name, e.g. blur or inpaint")
    p.add_argument(
        "--variant",
        action="append",
        default=[],
        help="LABEL=path/to/compare.json[#ROW] (first = baseline; ROW default dirac_do)",
    )
    p.add_argument("--append", action="store_true", help="keep the task's table; add the variants it lacks")
    p.add_argument("--rename", action="append", default=[], help="OLD=NEW: relabel a row of the task's table")
    p.add_argument("--ref", action="append", default=[], help="LABEL=REF: LABEL's gain is over REF (default: first)")
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    doc = json.loads(args.out.read_text()) if args.out.is_file() else {}
    if args.rename:
        if args.variant or args.ref or args.append or args.task not in doc:
            raise SystemExit(f"error: --rename relabels the existing {args.task!r} table of {args.out}; give it "
                             "without --variant, --ref or --append")  # fmt: skip
        return _write(args.out, doc, args.task, rename(doc[args.task], args.rename))
    if not args.variant:
        raise SystemExit("error: give --variant LABEL=compare.json (one or more), or --rename OLD=NEW")
    paths, which = _variants(args.variant)
    refs = {label: next(iter(paths)) for label in paths}
    for r in args.ref:
        label, ref = _label_pair(r, set(paths), "--ref")
        if ref not in paths:
            raise SystemExit(f"error: --ref {r!r} must be LABEL=REF with both labels given by --variant")
        refs[label] = ref
    rows = {label: _rows(path, which[label]) for label, path in paths.items()}
    entries = [variant_entry(lab, paths[lab], rows[lab], refs[lab], rows[refs[lab]]) for lab in paths]
    if args.append:
        entries = appended(doc.get(args.task, []), entries)
    return _write(args.out, doc, args.task, entries)


def _variants(specs: list[str]) -> tuple[dict[str, Path], dict[str, str]]:
    """``LABEL=path/compare.json[#ROW]`` specs as {label: path} and {label: row}."""
    paths: dict[str, Path] = {}
    which: dict[str, str] = {}
    for v in specs:
        label, sep, target = v.rpartition("=")
        path, _, row = target.partition("#")
        if not sep or not Path(path).is_file():
            raise SystemExit(f"error: --variant {v!r} must be LABEL=an existing compare.json (optionally #ROW)")
        paths[label], which[label] = Path(path), row or "dirac_do"
    return paths, which


def appended(table: list[dict[str, Any]], new: list[dict[str, Any]], tol: float = 5e-3) -> list[dict[str, Any]]:
    """``table`` plus the ``new`` entries it lacks; a new entry already in it (by label) must match its DO PSNR."""
    known = {e["variant"]: e for e in table}
    for e in new:
        if e["variant"] in known and abs(e["do_psnr"] - known[e["variant"]]["do_psnr"]) > tol:
            raise SystemExit(
                f"error: --append: {e['compare_json']} gives {e['variant']!r} DO {e['do_psnr']:.3f} dB, the table "
                f"records {known[e['variant']]['do_psnr']:.3f}: not the same model or measurements; use another label"
            )
    return table + [e for e in new if e["variant"] not in known]


def _write(out: Path, doc: dict[str, Any], task: str, entries: list[dict[str, Any]]) -> int:
    doc[task] = entries
    write_json(out, doc)
    atomic_write(out.with_suffix(".md"), markdown(doc).encode())
    print(markdown({task: entries}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
