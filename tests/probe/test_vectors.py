"""Perturbation vectors from protocol text, their disk cache and the random control."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from probe.errors import EmptyTextError, LayerRangeError
from probe.loading import LanguageModel
from probe.vectors import (
    LIBRARY_MEAN,
    domain_vectors,
    look_alikes,
    mean_hidden_state,
    protocol_mean,
    random_controls,
    vector_cache_path,
)
from router.library import load_library
from tests.conftest import STARTER, protocol_text, write_library


def test_mean_hidden_state_is_layer_output_mean(tiny_model: LanguageModel) -> None:
    text = "Give dantrolene 2.5 mg/kg IV."
    ids = tiny_model.tokenizer(text, add_special_tokens=False)["input_ids"]
    with torch.inference_mode():
        states = tiny_model.model(input_ids=torch.tensor([ids]), output_hidden_states=True).hidden_states
    expected = states[2][0].float().mean(dim=0)  # hidden_states[0] is the embedding output
    assert torch.allclose(mean_hidden_state(tiny_model, text, 1), expected, atol=1e-6)


def test_mean_hidden_state_rejects_empty_text(tiny_model: LanguageModel) -> None:
    with pytest.raises(EmptyTextError):
        mean_hidden_state(tiny_model, "", 1)


def test_protocol_with_empty_text_rejected(tiny_model: LanguageModel) -> None:
    library = load_library(STARTER)
    empty = library.get("heat-stroke").model_copy(update={"body": "   \n"})
    with pytest.raises(EmptyTextError, match="heat-stroke"):
        protocol_mean(tiny_model, empty, 1)


def test_protocol_mean_cached_by_model_layer_blob(tiny_model: LanguageModel, monkeypatch: pytest.MonkeyPatch) -> None:
    protocol = load_library(STARTER).get("anaphylaxis")
    first = protocol_mean(tiny_model, protocol, 2)
    path = vector_cache_path(tiny_model.sha256, 2, protocol)
    assert path.exists()
    assert path.parent.name == "layer-2"
    assert protocol.blob_sha in path.name
    assert tiny_model.sha256 in str(path)

    def not_called(*args: object) -> None:
        raise AssertionError("the cached vector should have been read")

    monkeypatch.setattr("probe.vectors.mean_hidden_state", not_called)
    assert torch.equal(protocol_mean(tiny_model, protocol, 2), first)


def test_protocol_mean_checks_layer_range(tiny_model: LanguageModel) -> None:
    protocol = load_library(STARTER).get("anaphylaxis")
    with pytest.raises(LayerRangeError, match="0 to 3"):
        protocol_mean(tiny_model, protocol, 4)


def test_contrast_vectors_point_to_look_alikes(tiny_model: LanguageModel) -> None:
    library = load_library(STARTER)
    vectors = domain_vectors(tiny_model, library, "malignant-hyperthermia", 1, "contrast", 2)
    assert [vector.name for vector in vectors] == [
        "contrast:malignant-hyperthermia->heat-stroke",
        "contrast:malignant-hyperthermia->neuroleptic-malignant-syndrome",
    ]
    expected = protocol_mean(tiny_model, library.get("heat-stroke"), 1) - protocol_mean(tiny_model, library.get("malignant-hyperthermia"), 1)
    assert torch.equal(vectors[0].values, expected)


def test_protocol_vectors_are_look_alike_means(tiny_model: LanguageModel) -> None:
    library = load_library(STARTER)
    vectors = domain_vectors(tiny_model, library, "heat-stroke", 1, "protocol", 1)
    assert [vector.name for vector in vectors] == ["protocol:malignant-hyperthermia"]
    assert torch.equal(vectors[0].values, protocol_mean(tiny_model, library.get("malignant-hyperthermia"), 1))


def test_protocol_without_look_alikes_uses_library_mean(tmp_path: Path) -> None:
    folder = write_library(tmp_path / "lib", {"a.md": protocol_text("a"), "b.md": protocol_text("b"), "c.md": protocol_text("c")})
    library = load_library(folder)
    assert look_alikes(library, "a") == [LIBRARY_MEAN]


def test_single_protocol_library_has_no_look_alikes(tmp_path: Path) -> None:
    library = load_library(write_library(tmp_path / "lib", {"a.md": protocol_text("a")}))
    assert look_alikes(library, "a") == []


def test_random_controls_seeded_same_norm(tiny_model: LanguageModel) -> None:
    library = load_library(STARTER)
    domain = domain_vectors(tiny_model, library, "malignant-hyperthermia", 1, "contrast", 3)
    first = random_controls(domain, seed=0)
    again = random_controls(domain, seed=0)
    other_seed = random_controls(domain, seed=1)
    assert len(first) == len(domain)
    for control, source in zip(first, domain):
        assert control.source == "random"
        assert control.layer == source.layer
        assert torch.allclose(control.values.norm(), source.values.norm())
    assert all(torch.equal(a.values, b.values) for a, b in zip(first, again))
    assert not torch.equal(first[0].values, other_seed[0].values)
