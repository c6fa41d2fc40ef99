"""Measure the probe's wall time against one plain answer from llama.cpp, on the same queries.

Usage: nice -n 10 .venv/bin/python benchmarks/probe_cost.py
Loads llama.cpp first and the torch copy second, in one process, one after the other.
"""

from __future__ import annotations

import gc
import statistics
import time

from probe.loading import load_language_model
from probe.probing import probe_answer
from probe.settings import load_settings
from router.library import load_library
from router.model import load_llama, resolve_model
from router.routing import RouteIndex
from router.service import ask

QUERIES = (
    "Rising end-tidal CO2 and masseter spasm after sux, temp climbing - what now?",
    "Army recruit collapsed on a 10 mile march in July, rectal temp 41.8 C, confused, no drugs. How do we cool him?",
    "Peanut exposure 5 min ago, tongue swelling, stridor, BP 78/40. Epi dose for a 70 kg adult?",
)


def time_plain_answers(library, index, info) -> list[float]:  # type: ignore[no-untyped-def]
    llama = load_llama(info)
    ask(QUERIES[0], library, index, llama, info)  # warm the prompt cache, as a running service would be
    times = []
    for query in QUERIES:
        started = time.monotonic()
        ask(query, library, index, llama, info)
        times.append(time.monotonic() - started)
    return times


def time_probes(library, index, info) -> tuple[float, list[float]]:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    model = load_language_model(info)
    load_time = time.monotonic() - started
    settings = load_settings()
    times = []
    for query in QUERIES:
        started = time.monotonic()
        probe_answer(query, library, index=index, settings=settings, language_model=model)
        times.append(time.monotonic() - started)
    return load_time, times


def main() -> None:
    library = load_library(None)
    index = RouteIndex(library)
    info = resolve_model(None)
    plain = time_plain_answers(library, index, info)
    gc.collect()
    load_time, probes = time_probes(library, index, info)
    print(f"settings: {load_settings().model_dump()}")
    print(f"plain answer (llama.cpp, routing + answer): {[round(t, 1) for t in plain]} s, median {statistics.median(plain):.1f} s")
    print(f"probe (torch, choice + answer steps): {[round(t, 1) for t in probes]} s, median {statistics.median(probes):.1f} s")
    print(f"torch model load (from the saved copy): {load_time:.1f} s, once per process")
    print(f"ratio probe / plain answer: {statistics.median(probes) / statistics.median(plain):.1f}")


if __name__ == "__main__":
    main()
