"""Register and static shared-memory budgets of every kernel entry point.

``kernels/budgets.json`` records, per entry point and architecture, the registers per thread and
the static shared memory that ptxas reported when the budget was last written, as the maximum
over nvcc and NVRTC. The compile gate fails when a kernel needs more than its budget, or has no
budget at all: growth is what the table exists to catch, so it has no slack.

    python -m pyconv.devtools.cuda_budgets           # measured table vs. budgets
    python -m pyconv.devtools.cuda_budgets --write   # rewrite kernels/budgets.json; review the diff

Dynamic shared memory is sized by the launch glue, not here.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .._sources import kernels_dir
from . import cuda_compile

__all__ = ["RESOURCES", "WRITE_COMMAND", "budgets_path", "compiler_versions", "load", "measure",
           "render", "stale_entries", "version_mismatch", "violations", "write"]

RESOURCES = ("registers", "shared_bytes")
WRITE_COMMAND = "python -m pyconv.devtools.cuda_budgets --write"


def budgets_path() -> Path:
    return kernels_dir() / "budgets.json"


def load(path: Path | None = None) -> dict:
    """``{"measured_with": {compiler: version}, "budgets": {entry: {arch: {resource: n}}}}``."""
    path = Path(path or budgets_path())
    if not path.is_file():
        return {"measured_with": {}, "budgets": {}}
    return json.loads(path.read_text())


def measure(results) -> dict[str, dict[str, dict[str, int]]]:
    """``entry -> arch -> {resource: max over the results' compilers}`` from CompileResults."""
    table: dict[str, dict[str, dict[str, int]]] = {}
    for result in results:
        for kernel in result.kernels.values():
            slot = table.setdefault(kernel.name, {}).setdefault(
                kernel.arch, {r: 0 for r in RESOURCES})
            for r in RESOURCES:
                slot[r] = max(slot[r], getattr(kernel, r))
    return table


def violations(results, table: dict) -> list[str]:
    """Kernels over budget or without one, one message each (empty when all fit)."""
    budgets = table["budgets"]
    found, unbudgeted = [], set()
    for result in results:
        for kernel in result.kernels.values():
            budget = budgets.get(kernel.name, {}).get(kernel.arch)
            if budget is None:
                if kernel.name not in unbudgeted:
                    unbudgeted.add(kernel.name)
                    found.append(f"{kernel.name} ({result.source.name}) has no budget for "
                                 f"{kernel.arch}: a new kernel needs one; run `{WRITE_COMMAND}` "
                                 f"and review the diff of kernels/budgets.json")
                continue
            for r in RESOURCES:
                if getattr(kernel, r) > budget[r]:
                    found.append(f"{kernel.name} on {kernel.arch} ({result.compiler}): "
                                 f"{r}={getattr(kernel, r)} exceeds its budget {budget[r]}; "
                                 f"reduce it, or if the growth is intended run `{WRITE_COMMAND}` "
                                 f"and justify the new budget in the commit")
    return found


def stale_entries(table: dict, entries) -> list[str]:
    """Budgeted entry points that no kernel defines any more."""
    return sorted(set(table["budgets"]) - set(entries))


def compiler_versions() -> dict[str, str]:
    """The versions of the installed compilers, as budgets.json records them."""
    versions = {}
    if "nvcc" in cuda_compile.available_compilers():
        versions["nvcc"] = cuda_compile.nvcc_version()
    if "nvrtc" in cuda_compile.available_compilers():
        versions["nvrtc"] = cuda_compile.load_nvrtc().version
    return versions


def _release(version: str) -> str:
    return ".".join(version.split(".")[:2])


def version_mismatch(table: dict, versions: dict[str, str]) -> str | None:
    """Why the installed compilers cannot be held to the table (another CUDA release generates
    other code), or None. Only major.minor must match."""
    for compiler, recorded in table.get("measured_with", {}).items():
        if compiler in versions and _release(versions[compiler]) != _release(recorded):
            return (f"kernels/budgets.json was measured with {compiler} {recorded}; this is "
                    f"{compiler} {versions[compiler]}")
    return None


def write(measured: dict, versions: dict[str, str], path: Path | None = None) -> Path:
    """Rewrite the table: one line per entry point and architecture, for readable diffs."""
    path = Path(path or budgets_path())
    lines = ["{", f'  "measured_with": {json.dumps(versions, sort_keys=True)},', '  "budgets": {']
    entries = sorted(measured)
    for i, entry in enumerate(entries):
        archs = sorted(measured[entry])
        lines.append(f"    {json.dumps(entry)}: {{")
        for j, arch in enumerate(archs):
            comma = "," if j < len(archs) - 1 else ""
            lines.append(f"      {json.dumps(arch)}: {json.dumps(measured[entry][arch])}{comma}")
        lines.append("    }" + ("," if i < len(entries) - 1 else ""))
    lines += ["  }", "}"]
    path.write_text("\n".join(lines) + "\n")
    return path


def render(results, table: dict) -> str:
    """The measured resources of every entry point next to its budget, as a text table."""
    by_key = {}
    for result in results:
        for k in result.kernels.values():
            by_key.setdefault((k.name, k.arch), {})[result.compiler] = k
    header = ("entry point", "arch", "regs nvcc", "regs nvrtc", "reg budget", "smem", "smem budget",
              "stack", "status")
    rows = []
    for (name, arch), per_compiler in sorted(by_key.items()):
        budget = table["budgets"].get(name, {}).get(arch)
        kernels = list(per_compiler.values())
        regs = {c: str(k.registers) for c, k in per_compiler.items()}
        smem = max(k.shared_bytes for k in kernels)
        if budget is None:
            status = "NO BUDGET"
        elif any(getattr(k, r) > budget[r] for k in kernels for r in RESOURCES):
            status = "OVER"
        elif any(getattr(k, r) < budget[r] for k in kernels for r in RESOURCES):
            status = "under"
        else:
            status = "ok"
        rows.append((name, arch, regs.get("nvcc", "-"), regs.get("nvrtc", "-"),
                     str(budget["registers"]) if budget else "-", str(smem),
                     str(budget["shared_bytes"]) if budget else "-",
                     str(max(k.stack_frame for k in kernels)), status))
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()
                     for row in [header, *rows])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pyconv.devtools.cuda_budgets",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true",
                        help="rewrite kernels/budgets.json from the measured values")
    args = parser.parse_args(argv)

    compilers = cuda_compile.available_compilers()
    if args.write and compilers != cuda_compile.COMPILERS:
        missing = sorted(set(cuda_compile.COMPILERS) - set(compilers))
        print(f"--write needs both nvcc and NVRTC; missing: {missing}", file=sys.stderr)
        return 2
    sources = cuda_compile.kernel_sources()
    results = list(cuda_compile.compile_all(sources, compilers=compilers).values())
    table = load()
    print(render(results, table))

    failed = [r for r in results if r.problems()]
    for r in failed:
        print(f"\n{r.compiler} {r.source.name} {r.arch}: " + "; ".join(r.problems()),
              file=sys.stderr)
    if args.write:
        # A spill fails ptxas after it has reported the kernel's resources, so those can still
        # be measured; a file that never reached ptxas cannot, and writing would drop its rows.
        unmeasured = sorted({f"{r.source.name} ({r.compiler} {r.arch})"
                             for r in results if not r.kernels})
        if unmeasured:
            print(f"\nnot writing: no ptxas report for {', '.join(unmeasured)}", file=sys.stderr)
            return 1
        path = write(measure(results), compiler_versions())
        print(f"\nwrote {path}; review the diff (git diff {path.name}) before committing")
        return 0
    problems = violations(results, table)
    problems += [f"stale budget: {e} is defined by no kernel"
                 for e in stale_entries(table, {k for r in results for k in r.kernels})]
    for p in problems:
        print(p, file=sys.stderr)
    return 1 if failed or problems else 0


if __name__ == "__main__":
    sys.exit(main())
