"""The probe on the real default model: load, one baseline and perturbed rows of a few tokens."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from probe.generation import encode_chat, generate_rows
from probe.inject import Perturbation
from probe.loading import cache_folder, load_language_model
from probe.vectors import domain_vectors, random_controls
from router.answer import answer_messages
from router.library import load_library
from router.model import DEFAULT_MODEL_SHA256, resolve_model
from tests.conftest import REAL_MODEL, STARTER

# The dequantised copy saved by an earlier probe or calibration run, outside the test's data folder.
REAL_CACHE = REAL_MODEL.parent.parent / "probe" / "models" / DEFAULT_MODEL_SHA256


@pytest.fixture
def real_cache(data_home: Path) -> None:
    """Link the saved torch copy into the test's data folder, so the test skips the 40-60 s conversion."""
    if REAL_CACHE.exists():
        link = cache_folder(DEFAULT_MODEL_SHA256)
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(REAL_CACHE, link)


@pytest.mark.torch
def test_real_model_baseline_and_perturbed(require_model: Path, real_cache: None) -> None:
    model = load_language_model(resolve_model(None))
    library = load_library(STARTER)
    protocol = library.get("malignant-hyperthermia")
    ids = encode_chat(model.tokenizer, answer_messages("Rising end-tidal CO2 and masseter spasm after sux. Treatment?", [protocol]))

    domain = domain_vectors(model, library, protocol.id, 14, "contrast", 1)
    control = random_controls(domain, seed=0)
    texts = generate_rows(model, ids, [None, Perturbation(domain[0], 0.0), Perturbation(domain[0], 0.5), Perturbation(control[0], 0.5)], 6)

    assert model.layer_count == 28
    assert texts[0] != ""
    assert texts[1] == texts[0]  # strength 0 reproduces the baseline exactly
    assert all(len(model.layer(index)._forward_hooks) == 0 for index in range(model.layer_count))


@pytest.mark.torch
def test_ask_probe_reports_and_records(require_model: Path, real_cache: None) -> None:
    from typer.testing import CliRunner

    from cli import app

    runner = CliRunner()
    query = "Rising end-tidal CO2 and masseter spasm after sux, temp 39.5. Treatment?"
    result = runner.invoke(app, ["ask", query, "--no-answer", "--probe", "--json"])
    assert result.exit_code == 0, result.output
    import json

    data = json.loads(result.stdout)
    assert isinstance(data["probe"]["stable"], bool)
    log = json.loads(runner.invoke(app, ["log", "--json", "-n", "1"]).stdout)
    assert log[0]["answer_id"] == data["answer_id"]
    assert log[0]["probe"] is not None
