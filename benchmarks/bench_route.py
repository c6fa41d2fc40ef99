"""Time library loading, the pre-filter, the model's choice and a full answer; write RESULTS.md.

Run from the repository root:

    .venv/bin/python benchmarks/bench_route.py            # starter library, model included
    .venv/bin/python benchmarks/bench_route.py --no-model # pre-filter and loading only

Every figure is the median (and p95) of several runs in one process on one machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from router.library import STARTER_LIBRARY, load_library  # noqa: E402
from router.routing import load_index, route_query  # noqa: E402

QUERIES = [
    json.loads(line)["query"]
    for line in (ROOT / "tests" / "cases" / "router-dev.jsonl").read_text(encoding="utf-8").splitlines()
    if line.strip()
][:40]


def timed(function: Callable[[], object], repeats: int) -> list[float]:
    """Return wall-clock seconds of each of `repeats` calls."""
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        seconds.append(time.perf_counter() - start)
    return seconds


def summary(seconds: list[float]) -> tuple[float, float]:
    """Return (median, p95) in milliseconds."""
    ordered = sorted(seconds)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1000, p95 * 1000


def pseudo_word(generator: random.Random) -> str:
    """Return a pronounceable made-up word, so synthetic protocols share no real vocabulary."""
    syllables = [generator.choice("bcdfghklmnprstvz") + generator.choice("aeiou") for _ in range(generator.randint(3, 5))]
    return "".join(syllables)


def generate_library(folder: Path, count: int) -> None:
    """Write the starter protocols plus synthetic ones up to `count`, each with its own vocabulary."""
    generator = random.Random(0)
    pool = sorted({pseudo_word(generator) for _ in range(count * 4)})
    for path in STARTER_LIBRARY.glob("*.md"):
        if path.name != "README.md":
            shutil.copy(path, folder / path.name)
    template = (ROOT / "tests" / "cases" / "synthetic-protocol.md.txt").read_text(encoding="utf-8")
    for number in range(count - 16):
        words = generator.sample(pool, 9)
        text = template.format(
            id=f"synthetic-{number:05d}",
            title=f"Synthetic {words[0]} {words[1]} syndrome",
            alias=f"{words[0]} {words[2]}",
            short=words[3][:3].upper(),
            any_terms=", ".join(words[3:7]),
            all_term=words[7],
            drug=words[8],
        )
        (folder / f"synthetic-{number:05d}.md").write_text(text, encoding="utf-8")


def bench_prefilter(label: str, folder: Path, repeats: int) -> list[str]:
    """Time a cold load (no cache), warm loads and the pre-filter on one library."""
    cold_load = timed(lambda: load_library(folder), 1)[0]
    library = load_library(folder)
    cold_index = timed(lambda: load_index(library), 1)[0]
    warm_load, _ = summary(timed(lambda: load_index(load_library(folder)), repeats))
    index = load_index(library)
    per_query = []
    for query in QUERIES:
        per_query += timed(lambda query=query: route_query(query, index), repeats)
    route_median, route_p95 = summary(per_query)
    return [
        f"| {label} | {len(library.protocols)} | {cold_load * 1000:.0f} | {cold_index * 1000:.0f} | {warm_load:.0f} "
        f"| {route_median:.2f} | {route_p95:.2f} |"
    ]


def bench_model(repeats: int) -> list[str]:
    from router.model import load_llama, resolve_model
    from router.service import ask

    info = resolve_model(None)
    load_seconds = timed(lambda: load_llama(info), 1)
    model = load_llama(info)
    library = load_library(STARTER_LIBRARY)
    index = load_index(library)
    choice_seconds = []
    for query in QUERIES[:10]:
        choice_seconds += timed(lambda query=query: ask(query, library, index, model, info, write_answer=False), 1)
    vignette = "32-year-old male, post-anesthesia, temperature 104F, muscle rigidity, tachycardia. What treatment?"
    answer_seconds = timed(lambda: ask(vignette, library, index, model, info), repeats)
    choice_median, choice_p95 = summary(choice_seconds)
    answer_median, answer_p95 = summary(answer_seconds)
    return [
        f"| model load (first call in a process) | {load_seconds[0]:.1f} s | |",
        f"| route + model choice (10 dev queries) | {choice_median / 1000:.2f} s | {choice_p95 / 1000:.2f} s |",
        f"| full answer, MH vignette ({repeats} runs) | {answer_median / 1000:.1f} s | {answer_p95 / 1000:.1f} s |",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--no-model", action="store_true", help="skip the model timings")
    parser.add_argument("--generated", type=int, default=10_000, help="size of the generated library (0 skips it)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "RESULTS.md")
    arguments = parser.parse_args()

    os.environ.setdefault("PROTOCOL_ROUTER_HOME", tempfile.mkdtemp(prefix="bench-home-"))
    rows = bench_prefilter("starter", STARTER_LIBRARY, arguments.repeats)
    if arguments.generated:
        folder = Path(tempfile.mkdtemp(prefix="bench-library-"))
        try:
            generate_library(folder, arguments.generated)
            rows += bench_prefilter(f"generated ({arguments.generated})", folder, arguments.repeats)
        finally:
            shutil.rmtree(folder)
    model_rows = [] if arguments.no_model else bench_model(max(1, arguments.repeats // 2))

    write_results(arguments, rows, model_rows)


def write_results(arguments: argparse.Namespace, rows: list[str], model_rows: list[str]) -> None:
    command = "python benchmarks/bench_route.py " + " ".join(sys.argv[1:])
    lines = [
        "# Benchmark results",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores, {platform.platform()}, Python {platform.python_version()}.",
        f"Command: `{command.strip()}`, {time.strftime('%Y-%m-%d')}.",
        "",
        "## Loading and pre-filter (no model)",
        "",
        "| library | protocols | cold load ms | cold index ms | warm load + index ms (median) | route ms per query (median) | route ms (p95) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        *rows,
    ]
    if model_rows:
        lines += ["", "## Model (default model, llama.cpp)", "", "| step | median | p95 |", "| --- | --- | --- |", *model_rows]
    arguments.output.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
