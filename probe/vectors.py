"""Perturbation vectors: mean hidden states of protocol text, their differences, and a random control."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from probe.errors import EmptyTextError, ProbeError
from router.library import Library
from router.paths import data_home
from router.protocol import Protocol

if TYPE_CHECKING:
    import torch

    from probe.loading import LanguageModel

VectorSource = Literal["contrast", "protocol", "random"]
MAX_TEXT_TOKENS = 2048  # longer protocol text is cut at the end; the key actions come first
LIBRARY_MEAN = "library-mean"


@dataclass(frozen=True)
class PerturbationVector:
    """A direction in the hidden space of one decoder layer, with what it was built from."""

    name: str  # such as "contrast:malignant-hyperthermia->heat-stroke" or "random:1"
    source: VectorSource
    layer: int
    values: torch.Tensor  # shape (hidden_size,), float32 on the CPU

    def unit(self) -> torch.Tensor:
        norm = self.values.norm()
        if float(norm) == 0.0:
            raise ProbeError(f"vector {self.name} has zero norm: its protocols have identical mean hidden states")
        return self.values / norm


def protocol_text(protocol: Protocol) -> str:
    """Return the text a protocol's vector is built from: its title and Markdown body."""
    if not protocol.body.strip():
        raise EmptyTextError(f"protocol {protocol.id!r} ({protocol.path}) has empty text: no vector can be built from it")
    return f"# {protocol.meta.title}\n\n{protocol.body.strip()}\n"


class StopForward(Exception):
    """Raised by the capture hook so the forward pass skips the layers above the one read."""


def mean_hidden_state(language_model: LanguageModel, text: str, layer: int) -> torch.Tensor:
    """Return the output of decoder layer `layer` averaged over the tokens of `text`, in float32."""
    import torch

    ids = language_model.tokenizer(text, add_special_tokens=False, split_special_tokens=True)["input_ids"]
    ids = ids[:MAX_TEXT_TOKENS]
    if not ids:
        raise EmptyTextError("the text has no tokens: no vector can be built from it")

    captured: list[torch.Tensor] = []

    def capture(module: object, inputs: object, output: object) -> None:
        hidden = output[0] if isinstance(output, tuple) else output
        captured.append(hidden.detach())
        raise StopForward

    handle = language_model.layer(layer).register_forward_hook(capture)
    try:
        with torch.inference_mode():
            language_model.model(input_ids=torch.tensor([ids], device=language_model.device), use_cache=False)
    except StopForward:
        pass
    finally:
        handle.remove()
    return captured[0][0].float().mean(dim=0).cpu()


def vector_cache_path(sha256: str, layer: int, protocol: Protocol) -> Path:
    """Return the cache file of one protocol's mean hidden state, keyed by model, layer and blob SHA."""
    blob = protocol.blob_sha or hashlib.sha1(protocol_text(protocol).encode(), usedforsecurity=False).hexdigest()
    return data_home() / "probe" / "vectors" / sha256 / f"layer-{layer}" / f"{protocol.id}-{blob}.safetensors"


def protocol_mean(language_model: LanguageModel, protocol: Protocol, layer: int) -> torch.Tensor:
    """Return the mean hidden state of a protocol's text, read from or written to the disk cache."""
    from safetensors.torch import load_file, save_file

    language_model.layer(layer)  # raises LayerRangeError before any work
    path = vector_cache_path(language_model.sha256, layer, protocol)
    if path.exists():
        return load_file(str(path))["mean"]
    mean = mean_hidden_state(language_model, protocol_text(protocol), layer)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    save_file({"mean": mean.contiguous()}, str(temporary))
    temporary.replace(path)
    return mean


def look_alikes(library: Library, target_id: str) -> list[str]:
    """Return the target's confusable protocols present in the library, in front-matter order.

    A protocol without look-alikes is contrasted with the mean of the rest of the library, named
    LIBRARY_MEAN, when the library has other protocols.
    """
    target = library.get(target_id)
    present = [other for other in target.meta.confusable_with if other in library.protocols and other != target_id]
    if present:
        return present
    return [LIBRARY_MEAN] if len(library.protocols) > 1 else []


def other_mean(language_model: LanguageModel, library: Library, name: str, target_id: str, layer: int) -> torch.Tensor:
    """Return the mean hidden state of one look-alike, or of every other protocol for LIBRARY_MEAN."""
    import torch

    if name != LIBRARY_MEAN:
        return protocol_mean(language_model, library.get(name), layer)
    others = [protocol for protocol_id, protocol in sorted(library.protocols.items()) if protocol_id != target_id]
    return torch.stack([protocol_mean(language_model, protocol, layer) for protocol in others]).mean(dim=0)


def domain_vectors(
    language_model: LanguageModel,
    library: Library,
    target_id: str,
    layer: int,
    source: VectorSource,
    max_vectors: int,
) -> list[PerturbationVector]:
    """Build the vectors that push the model from the target protocol toward each of its look-alikes.

    "contrast" is mean(look-alike) - mean(target), so the text both share cancels out; "protocol" is
    the look-alike's own mean hidden state.
    """
    if source == "random":
        raise ValueError("random vectors come from random_controls, not domain_vectors")
    vectors = []
    for name in look_alikes(library, target_id)[:max_vectors]:
        toward = other_mean(language_model, library, name, target_id, layer)
        if source == "contrast":
            values = toward - protocol_mean(language_model, library.get(target_id), layer)
            label = f"contrast:{target_id}->{name}"
        else:
            values, label = toward, f"protocol:{name}"
        vectors.append(PerturbationVector(name=label, source=source, layer=layer, values=values))
    return vectors


def random_controls(like: list[PerturbationVector], seed: int) -> list[PerturbationVector]:
    """Return one seeded random vector per given vector, on the same layer and with the same norm.

    Vector i for a layer is the same for every query, so results are reproducible across runs.
    """
    import torch

    controls = []
    for index, vector in enumerate(like):
        generator = torch.Generator().manual_seed(seed * 1_000_003 + vector.layer * 101 + index)
        values = torch.randn(vector.values.shape[0], generator=generator, dtype=torch.float32)
        values = values * (vector.values.norm() / values.norm())
        controls.append(PerturbationVector(name=f"random:{index + 1}", source="random", layer=vector.layer, values=values))
    return controls
