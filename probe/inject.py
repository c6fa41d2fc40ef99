"""Add perturbation vectors to a decoder layer's output with forward hooks that are always removed."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from probe.loading import LanguageModel
from probe.vectors import PerturbationVector

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Perturbation:
    """One vector at one strength: the hook adds strength x hidden-state norm x unit vector."""

    vector: PerturbationVector
    strength: float

    @property
    def layer(self) -> int:
        return self.vector.layer

    def label(self) -> str:
        return f"{self.vector.name} at strength {self.strength:g}, layer {self.layer}"


class RowShift:
    """Forward hook that shifts each batch row along its own unit vector, scaled by that row's norm.

    `directions` has shape (rows, hidden) and contains unit vectors; `strengths` has shape (rows, 1).
    A row with strength 0 gets exactly zero added, so its output is bit-identical to no hook.
    """

    def __init__(self, directions: torch.Tensor, strengths: torch.Tensor) -> None:
        self.directions = directions
        self.strengths = strengths

    def __call__(self, module: Any, inputs: Any, output: Any) -> Any:
        # transformers 5 decoder layers return a tensor; older versions return a tuple with it first.
        if isinstance(output, tuple):
            return (self.shift(output[0]), *output[1:])
        return self.shift(output)

    def shift(self, hidden: torch.Tensor) -> torch.Tensor:
        # hidden: (rows, positions, hidden_size); the norm is taken per row and position, in float32.
        norms = hidden.float().norm(dim=-1, keepdim=True)
        offset = self.strengths.unsqueeze(1) * norms * self.directions.unsqueeze(1)
        return hidden + offset.to(hidden.dtype)


def build_shifts(perturbations: Sequence[Perturbation | None], language_model: LanguageModel) -> dict[int, RowShift]:
    """Group the per-row perturbations by layer; a row with None, or on another layer, gets strength 0."""
    import torch

    rows = len(perturbations)
    layers = sorted({item.layer for item in perturbations if item is not None})
    shifts = {}
    for layer in layers:
        language_model.layer(layer)  # raises LayerRangeError with the valid range
        directions = torch.zeros(rows, language_model.hidden_size, dtype=torch.float32)
        strengths = torch.zeros(rows, 1, dtype=torch.float32)
        for row, item in enumerate(perturbations):
            if item is not None and item.layer == layer:
                directions[row] = item.vector.unit()
                strengths[row, 0] = item.strength
        shifts[layer] = RowShift(directions.to(language_model.device), strengths.to(language_model.device))
    return shifts


@contextmanager
def perturbed(language_model: LanguageModel, perturbations: Sequence[Perturbation | None]) -> Iterator[list[RowShift]]:
    """Install one hook per layer for a batch whose row i gets perturbations[i]; remove them on exit.

    Side effect: the model's layers carry forward hooks inside the block, and none after it, also
    when the block raises.
    """
    shifts = build_shifts(perturbations, language_model)
    handles = []
    try:
        for layer, shift in shifts.items():
            handles.append(language_model.layer(layer).register_forward_hook(shift))
        yield list(shifts.values())
    finally:
        for handle in handles:
            handle.remove()
