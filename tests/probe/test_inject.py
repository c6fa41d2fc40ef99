"""Forward hooks on a tiny random Qwen2 model: added, removed, exact at strength 0, and able to flip."""

from __future__ import annotations

import pytest
import torch

from probe.errors import LayerRangeError
from probe.generation import encode_chat, generate_rows
from probe.inject import Perturbation, RowShift, perturbed
from probe.loading import LanguageModel
from probe.result import StepResult
from probe.steps import Reader, run_step
from probe.vectors import PerturbationVector

MESSAGES = [{"role": "system", "content": "You answer briefly."}, {"role": "user", "content": "What is the first drug?"}]


def vector(model: LanguageModel, layer: int, seed: int = 1) -> PerturbationVector:
    generator = torch.Generator().manual_seed(seed)
    values = torch.randn(model.hidden_size, generator=generator)
    return PerturbationVector(name=f"test:{seed}", source="contrast", layer=layer, values=values)


def token_direction(model: LanguageModel, character: str, layer: int) -> PerturbationVector:
    """Return the unembedding row of one character: pushing along it makes that character the argmax."""
    token = model.tokenizer.convert_tokens_to_ids(character)
    values = model.model.get_output_embeddings().weight[token].detach().float().clone()
    return PerturbationVector(name=f"toward:{character}", source="contrast", layer=layer, values=values)


def hook_count(model: LanguageModel) -> int:
    return sum(len(model.layer(index)._forward_hooks) for index in range(model.layer_count))


def prompt_ids(model: LanguageModel) -> list[int]:
    return encode_chat(model.tokenizer, MESSAGES)


def test_hook_added_inside_and_removed_after(tiny_model: LanguageModel) -> None:
    assert hook_count(tiny_model) == 0
    with perturbed(tiny_model, [None, Perturbation(vector(tiny_model, 1), 0.3), Perturbation(vector(tiny_model, 2), 0.3)]):
        assert len(tiny_model.layer(1)._forward_hooks) == 1
        assert len(tiny_model.layer(2)._forward_hooks) == 1
        assert hook_count(tiny_model) == 2
    assert hook_count(tiny_model) == 0


def test_hook_removed_after_exception(tiny_model: LanguageModel) -> None:
    with pytest.raises(RuntimeError, match="inside the block"):
        with perturbed(tiny_model, [Perturbation(vector(tiny_model, 1), 0.5)]):
            assert hook_count(tiny_model) == 1
            raise RuntimeError("inside the block")
    assert hook_count(tiny_model) == 0


def test_hook_removed_after_failed_generation(tiny_model: LanguageModel, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_step(*args: object, **kwargs: object) -> None:
        raise ValueError("decoding failed")

    monkeypatch.setattr("probe.generation.record_step", broken_step)
    with pytest.raises(ValueError, match="decoding failed"):
        generate_rows(tiny_model, prompt_ids(tiny_model), [None, Perturbation(vector(tiny_model, 1), 0.5)], 4)
    assert hook_count(tiny_model) == 0


def test_strength_zero_logits_identical(tiny_model: LanguageModel) -> None:
    ids = torch.tensor([prompt_ids(tiny_model)])
    with torch.inference_mode():
        plain = tiny_model.model(input_ids=ids).logits
        with perturbed(tiny_model, [Perturbation(vector(tiny_model, 2), 0.0)]):
            hooked = tiny_model.model(input_ids=ids).logits
    assert torch.equal(plain, hooked)


def test_strength_zero_generation_matches_baseline(tiny_model: LanguageModel) -> None:
    ids = prompt_ids(tiny_model)
    alone = generate_rows(tiny_model, ids, [None], 12)
    batch = generate_rows(
        tiny_model, ids, [None, Perturbation(vector(tiny_model, 1), 0.0), Perturbation(vector(tiny_model, 3, seed=7), 0.0)], 12
    )
    assert alone[0] != ""
    assert batch == [alone[0]] * 3


def test_shift_scales_with_hidden_norm() -> None:
    hidden = torch.randn(2, 5, 8)
    direction = torch.zeros(2, 8)
    direction[:, 0] = 1.0
    shift = RowShift(direction, torch.tensor([[0.25], [0.0]]))
    shifted = shift.shift(hidden)
    added = (shifted - hidden).norm(dim=-1)
    assert torch.allclose(added[0], 0.25 * hidden[0].norm(dim=-1))
    assert torch.equal(shifted[1], hidden[1])


def test_hook_handles_tensor_and_tuple_output() -> None:
    hidden = torch.ones(1, 2, 4)
    shift = RowShift(torch.tensor([[1.0, 0.0, 0.0, 0.0]]), torch.tensor([[0.5]]))
    from_tensor = shift(None, (), hidden)
    from_tuple = shift(None, (), (hidden, "attention weights"))
    assert isinstance(from_tensor, torch.Tensor)
    assert isinstance(from_tuple, tuple)
    assert from_tuple[1] == "attention weights"
    assert torch.equal(from_tuple[0], from_tensor)
    assert from_tensor[0, 0, 0].item() == pytest.approx(1.0 + 0.5 * 2.0)


def test_layer_out_of_range_names_valid_range(tiny_model: LanguageModel) -> None:
    with pytest.raises(LayerRangeError, match="use 0 to 3"):
        with perturbed(tiny_model, [Perturbation(vector(tiny_model, 9), 0.3)]):
            pass
    assert hook_count(tiny_model) == 0


def first_character_reader() -> Reader:
    return Reader(
        read=lambda text: text[:1],
        to_json=lambda first: {"first": first},
        changes=lambda baseline, other: [] if baseline == other else [f"first character: {baseline!r} -> {other!r}"],
    )


def run_constructed_case(model: LanguageModel) -> StepResult:
    last = model.layer_count - 1
    perturbations = [
        Perturbation(token_direction(model, "x", last), 0.0),
        Perturbation(token_direction(model, "x", last), 50.0),
    ]
    step, _ = run_step(model, "answer", lambda query: [*MESSAGES[:1], {"role": "user", "content": query}], "What is the first drug?", perturbations, 6, first_character_reader())
    return step


def test_constructed_case_flips_deterministically(tiny_model: LanguageModel) -> None:
    first = run_constructed_case(tiny_model)
    second = run_constructed_case(tiny_model)

    assert not first.baseline_text.startswith("x")
    assert first.runs[0].text == first.baseline_text
    assert not first.runs[0].flipped
    assert first.runs[1].text == "xxxxxx"
    assert first.runs[1].changes == (f"first character: {first.baseline_text[:1]!r} -> 'x'",)
    assert [run.text for run in second.runs] == [run.text for run in first.runs]
    assert second.baseline_text == first.baseline_text
