"""``pyconv bench``: the benchmark suite of issue 4 (cases in :mod:`.cases`, timing in
:mod:`.harness`).

For each thread count: measure the machine's fp32 FMA peak (pyconv._C) and memory bandwidth,
then for each selected case run pyconv and every comparison (PyTorch and/or the NumPy
reference) interleaved, and print one table row per (case, comparison): medians with min/max,
the ratio pyconv / other (below 1 means pyconv is faster), pyconv's GFLOP/s, GB/s or images/s,
its fraction of the measured peak, and issue 4's target with met / not met where one applies.
Rows whose pyconv side still runs NumPy reference kernels on the chosen backend are marked.
"""

from __future__ import annotations

import datetime
import json
import sys

from . import cases as cases_mod
from . import harness


def cpu_unavailable_reason():
    """None when the cpu backend loads, else why not (no pyconv._C, or a stale build)."""
    from .. import backends

    try:
        backends.get("cpu")
    except (RuntimeError, ValueError) as exc:
        return str(exc)
    return None


def default_backend() -> str:
    """``cpu`` when pyconv._C loads (with every kernel the Python side lists), else ``numpy``."""
    return "numpy" if cpu_unavailable_reason() else "cpu"


def default_against() -> list:
    return ["torch"] if harness.import_torch() is not None else ["numpy"]


def reference_kernels(case, backend_name: str) -> list:
    """The case's contract kernels that run on the NumPy reference on ``backend_name`` (all of
    them on the numpy backend)."""
    from .. import backends

    module = backends.get(backend_name)
    if backend_name == "numpy":
        return list(case.kernels)
    return [k for k in case.kernels if getattr(getattr(module, k), "runs_on_reference", False)]


def _evaluate(case, against: str, ratio):
    for target in case.targets:
        if target.against == against:
            return target.text, (None if ratio is None else ratio <= target.max_ratio)
    return None, None


def run_case(case, backend: str, against: list, torch, settings: dict, limits: dict) -> list:
    """Rows (dicts) of one case at the current thread count: one per comparison."""
    base = {"group": case.group, "case": case.name, "shape": case.shape, "api": case.api,
            "threads": limits["threads"], "backend": backend, "unit": case.unit,
            "reference_kernels": reference_kernels(case, backend), "kernels": list(case.kernels)}
    # one interleaving per comparison: another library's worker threads that keep spinning after
    # a call (OpenBLAS busy-waits) would otherwise steal the second core from the next call of a
    # third one, and the 2-thread numbers would depend on who ran before whom
    rows = []
    for other in against:
        try:
            fns = {"pyconv": case.make(backend),
                   other: case.make_torch(torch) if other == "torch" else case.make("numpy")}
            stats = harness.interleave(fns, settings["repeats"], settings["warmup"],
                                       harness.CLOCKS[settings["clock"]], settings["budget"])
        except Exception as exc:  # noqa: BLE001 - one broken kernel must not end the suite
            rows.append(dict(base, against=other, error=f"{type(exc).__name__}: {exc}"))
            continue
        ours, theirs = stats["pyconv"], stats[other]
        ratio = ours.median / theirs.median if theirs.median > 0 else None
        rate = case.work / ours.median if ours.median > 0 else None
        other_rate = case.work / theirs.median if theirs.median > 0 else None
        limit = {"GFLOP/s": limits["peak_gflops"], "GB/s": limits["bandwidth_gbs"]}.get(case.unit)
        target, met = _evaluate(case, other, ratio)
        rows.append(dict(base, against=other, pyconv=ours.as_dict(), other=theirs.as_dict(),
                         ratio=ratio, rate=rate, other_rate=other_rate,
                         fraction_of_peak=(rate / limit) if rate and limit else None,
                         target=target, met=met))
    return rows


def measure_limits(n_threads: int, clock: str, quick: bool) -> dict:
    mib = 8 if quick else 64
    return {"threads": n_threads, "bandwidth_mib": mib,
            "peak_gflops": harness.fma_peak_gflops(n_threads, clock, 0.05 if quick else 0.3),
            "bandwidth_gbs": harness.bandwidth_gbs(n_threads, mib, 2 if quick else 5, clock)}


def run(selected: list, thread_counts=(1, 2), backend: str | None = None, against=None,
        repeats: int = 5, warmup: int = 1, clock: str = "wall", budget: float = 1.0,
        quick: bool = False, progress=None, malloc_note: str | None = None) -> dict:
    """Run ``selected`` cases at every thread count; returns everything as a JSON-able dict.
    ``progress(row)`` (optional) is called after each row."""
    backend = backend or default_backend()
    against = list(against or default_against())
    torch = harness.import_torch() if "torch" in against else None
    if "torch" in against and torch is None:
        raise RuntimeError("--against torch: PyTorch is not importable here")
    settings = {"repeats": repeats, "warmup": warmup, "clock": clock, "budget": budget,
                "malloc": malloc_note or "malloc: left at its defaults"}
    machine = _machine_notes()
    result = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
              "backend": backend, "against": against, "quick": quick, "settings": settings,
              "machine": machine, "torch": getattr(torch, "__version__", None),
              "blas_threads": harness.blas_threads_note(), "limits": [], "rows": [],
              "cpu_backend_unavailable": cpu_unavailable_reason()}
    for n in thread_counts:
        with harness.threads(n, torch):
            limits = measure_limits(n, clock, quick)
            for case in selected:
                for row in run_case(case, backend, against, torch, settings, limits):
                    result["rows"].append(row)
                    if progress is not None:
                        progress(row)
            after = measure_limits(n, clock, quick)
        # the higher of the two measurements: what the machine delivered at its best
        for key in ("peak_gflops", "bandwidth_gbs"):
            if after[key] and (limits[key] is None or after[key] > limits[key]):
                limits[key] = after[key]
        result["limits"].append(limits)
        _rescale(result["rows"], limits)
    result["machine"]["load_after"] = _machine_notes()["load"]
    return result


def _rescale(rows, limits):
    """Fractions of the peak against the final (best) peak/bandwidth of their thread count."""
    limit = {"GFLOP/s": limits["peak_gflops"], "GB/s": limits["bandwidth_gbs"]}
    for row in rows:
        if row["threads"] == limits["threads"] and row.get("rate") and limit.get(row["unit"]):
            row["fraction_of_peak"] = row["rate"] / limit[row["unit"]]


def _machine_notes() -> dict:
    from .lenet import machine_notes

    return machine_notes()


# ----- report ---------------------------------------------------------------------------------


def _ms(stats) -> str:
    return f"{stats['median_ms']:.3g} ({stats['min_ms']:.3g}-{stats['max_ms']:.3g})"


def _rate(value, unit) -> str:
    if value is None:
        return "n/a"
    return f"{value:.0f} {unit}" if unit == "img/s" else f"{value:.3g} {unit}"


def _native(row) -> str:
    ref = row["reference_kernels"]
    if row["backend"] == "numpy":
        return "numpy"
    if not ref:
        return "yes"
    return "ref" if len(ref) == len(row["kernels"]) else f"part ({len(ref)}/{len(row['kernels'])} ref)"


HEADER = ("| case | shape | thr | vs | pyconv ms (min-max) | other ms (min-max) | ratio | "
          "pyconv rate | other rate | % peak | native | target | met |")


def format_row(row) -> str:
    lead = f"| {row['case']} | {row['shape']} | {row['threads']} | {row['against']} |"
    if "error" in row:
        return lead + f" error: {row['error'][:80]} | | | | | | | | |"
    frac = row["fraction_of_peak"]
    met = "" if row["met"] is None else ("met" if row["met"] else "NOT met")
    return (lead + f" {_ms(row['pyconv'])} | {_ms(row['other'])} | {row['ratio']:.2f} | "
            f"{_rate(row['rate'], row['unit'])} | {_rate(row['other_rate'], row['unit'])} | "
            f"{'' if frac is None else f'{100 * frac:.0f}%'} | {_native(row)} | "
            f"{row['target'] or ''} | {met} |")


def format_report(result: dict) -> str:
    m = result["machine"]
    s = result["settings"]
    lines = [f"pyconv bench, {result['date']}: backend {result['backend']} vs "
             f"{', '.join(result['against'])}" + (" (quick shapes)" if result["quick"] else ""),
             f"machine: {m['cpu']}, {m['cpus']} CPUs, python {m['python']}, numpy {m['numpy']}, "
             f"torch {result['torch'] or 'not used'}; " + ", ".join(
                 f"{k}={v}" for k, v in m["env"].items()),
             f"timing: {s['clock']} clock, {s['warmup']} warm-up round(s), then at least "
             f"{s['repeats']} interleaved rounds (more for cheap cases, about {s['budget']:g} s "
             f"per case); medians (min-max); {result['blas_threads']}"]
    if s.get("malloc"):
        lines.append(s["malloc"])
    if s["clock"] == "cpu":
        lines.append("clock: this process's CPU time (all threads), not elapsed time; the FMA "
                     "peak is rescaled to the same unit")
    if result.get("cpu_backend_unavailable"):
        lines.append(f"note: {result['cpu_backend_unavailable']}")
    if m.get("load") is not None:
        lines.append("load average before / after: " + " ".join(f"{v:.2f}" for v in m["load"])
                     + " / " + " ".join(f"{v:.2f}" for v in m.get("load_after") or ()))
    for lim in result["limits"]:
        peak = "n/a (pyconv._C not built)" if lim["peak_gflops"] is None else \
            f"{lim['peak_gflops']:.1f} GFLOP/s"
        bw = "n/a" if lim["bandwidth_gbs"] is None else f"{lim['bandwidth_gbs']:.1f} GB/s"
        lines.append(f"{lim['threads']} thread(s): fp32 FMA peak {peak}, memory bandwidth "
                     f"(a = b + c, {lim['bandwidth_mib']} MiB arrays, the higher of NumPy and a "
                     f"non-temporal-store loop) {bw}; both "
                     f"measured before and after the cases, the higher kept")
    lines += ["", HEADER, "|" + " --- |" * (HEADER.count("|") - 1)]
    lines += [format_row(row) for row in result["rows"]]
    lines.append("")
    lines.append("ratio = pyconv median / other median (< 1: pyconv faster); % peak = pyconv's "
                 "rate / the FMA peak (GFLOP/s) or the bandwidth (GB/s) of the same thread count; "
                 "native: 'ref' = pyconv's kernels for this case still run on the NumPy reference "
                 "on this backend.")
    lines += summarize(result["rows"])
    return "\n".join(lines)


def summarize(rows) -> list:
    judged = [r for r in rows if r.get("met") is not None]
    if not judged:
        return []
    missed = [r for r in judged if not r["met"]]
    out = [f"targets: {len(judged) - len(missed)} of {len(judged)} met"]
    for r in missed:
        out.append(f"  not met: {r['case']} {r['shape']} at {r['threads']} thread(s): "
                   f"{r['ratio']:.2f}x {r['against']} (target {r['target']})")
    return out


def write_json(result: dict, path: str) -> None:
    with open(path, "w") as f:
        json.dump(result, f, indent=1)


def _words(text):
    return [w.strip() for w in text.split(",") if w.strip()]


def run_from_args(args, stream=None) -> int:
    """Run the suite as ``pyconv bench`` options ``args`` say (see cli.add_bench_arguments);
    prints each row to stderr as it comes (a long run shows progress), then the report to
    ``stream`` (stdout). ValueError for bad option values."""
    stream = stream or sys.stdout
    from .. import backends

    try:
        threads = [int(w) for w in _words(args.threads)]
    except ValueError:
        raise ValueError(f"--threads: expected comma-separated ints, got {args.threads!r}") from None
    if not threads or min(threads) < 1:
        raise ValueError(f"--threads: expected positive ints, got {args.threads!r}")
    against = _words(args.against) if args.against else default_against()
    bad = [a for a in against if a not in ("torch", "numpy")]
    if bad or not against:
        raise ValueError(f"--against: expected torch and/or numpy, got {args.against!r}")
    if "torch" in against and harness.import_torch() is None:
        raise ValueError("--against torch: PyTorch is not importable here (use --against numpy)")
    backend = args.backend or default_backend()
    try:
        backends.get(backend)
    except (ValueError, RuntimeError) as exc:
        raise ValueError(str(exc)) from None
    selected = cases_mod.select(cases_mod.all_cases(args.quick), args.case)
    repeats = args.repeats if args.repeats is not None else (2 if args.quick else 5)
    budget = args.budget if args.budget is not None else (0.05 if args.quick else 1.0)
    malloc_note = None
    if getattr(args, "malloc", "resident") == "resident":
        from .resident_malloc import keep_freed_memory_resident

        malloc_note = keep_freed_memory_resident()
    print(HEADER, file=sys.stderr, flush=True)

    def progress(row):
        print(format_row(row), file=sys.stderr, flush=True)

    result = run(selected, threads, backend, against, repeats, args.warmup, args.clock, budget,
                 args.quick, progress, malloc_note)
    result["argv"] = sys.argv
    print(format_report(result), file=stream, flush=True)
    if args.json:
        write_json(result, args.json)
        print(f"results written to {args.json}", file=stream)
    return 0


def main(argv=None) -> int:
    """``python bench/bench_suite.py [options]``: the same as ``pyconv bench``."""
    import argparse

    from ..cli import add_bench_arguments

    parser = argparse.ArgumentParser(prog="bench_suite.py", description=__doc__.split("\n\n")[0])
    add_bench_arguments(parser)
    try:
        return run_from_args(parser.parse_args(argv))
    except ValueError as exc:
        parser.error(str(exc))
