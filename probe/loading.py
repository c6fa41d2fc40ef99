"""Load the router's GGUF model in torch through transformers, once per process, with a disk cache.

transformers dequantises the GGUF weights to bf16 (about 3.4 GB for the 1.5B default model). The
dense model and the tokenizer are saved with save_pretrained under the data folder, keyed by the
GGUF file's SHA-256, so later processes skip the 40-60 s conversion.
"""

from __future__ import annotations

import importlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from probe.errors import LayerRangeError, MissingPackageError, UnsupportedModelError
from router.model import ModelInfo
from router.paths import data_home

if TYPE_CHECKING:
    import torch

CACHE_COMPLETE_MARKER = "complete"
REQUIRED_PACKAGES = ("torch", "transformers", "gguf", "accelerate")


@dataclass
class LanguageModel:
    """A causal language model and its tokenizer in torch, with the id of the weights it came from."""

    model: Any  # transformers PreTrainedModel in eval mode
    tokenizer: Any  # transformers PreTrainedTokenizerBase with a chat template
    sha256: str  # of the GGUF file; keys every cache built from this model

    @property
    def layer_count(self) -> int:
        return len(decoder_layers(self.model))

    @property
    def hidden_size(self) -> int:
        return int(self.model.config.hidden_size)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def layer(self, index: int) -> Any:
        """Return the decoder layer at `index`, or raise LayerRangeError naming the valid range."""
        check_layer(index, self.layer_count)
        return decoder_layers(self.model)[index]


def decoder_layers(model: Any) -> Any:
    """Return the list of decoder layers of a transformers causal language model."""
    return model.get_decoder().layers


def check_layer(index: int, layer_count: int) -> None:
    if not 0 <= index < layer_count:
        raise LayerRangeError(
            f"layer {index} is out of range: this model has {layer_count} decoder layers, so use 0 to {layer_count - 1}"
        )


def import_package(name: str) -> Any:
    """Import one package of the probe extra, or raise MissingPackageError with the install command."""
    try:
        return importlib.import_module(name)
    except ImportError:
        raise MissingPackageError(name) from None


def require_packages() -> None:
    """Check that every package the probe needs is importable, before any slow work starts."""
    for name in REQUIRED_PACKAGES:
        import_package(name)


def gguf_architecture(path: Path) -> str:
    """Return the `general.architecture` value from a GGUF file's metadata."""
    gguf = import_package("gguf")
    reader = gguf.GGUFReader(str(path))
    field = reader.get_field("general.architecture")
    if field is None:
        raise UnsupportedModelError(f"GGUF file {path} has no general.architecture in its metadata: it cannot be loaded in torch")
    return str(field.contents())


def supported_architectures() -> set[str]:
    """Return the GGUF architectures that the installed transformers can load."""
    legacy = importlib.import_module("transformers.modeling_gguf_pytorch_utils")
    names = set(legacy.GGUF_SUPPORTED_ARCHITECTURES)
    try:
        packed = importlib.import_module("transformers.integrations.gguf.gguf_conversion_mapping")
        names |= set(packed.GGUF_ARCHS)
    except ImportError:  # transformers versions before the packed GGUF loader
        pass
    return names


def check_architecture(path: Path) -> str:
    """Raise UnsupportedModelError unless transformers can load this GGUF file's architecture."""
    architecture = gguf_architecture(path)
    supported = supported_architectures()
    if architecture not in supported:
        raise UnsupportedModelError(
            f"model {path.name} has architecture {architecture!r}, which transformers "
            f"{import_package('transformers').__version__} cannot load from GGUF; the probe needs one of: "
            f"{', '.join(sorted(supported))}. Use --model with a model of a supported architecture"
        )
    return architecture


def cache_folder(sha256: str) -> Path:
    """Return where the dequantised model and tokenizer of one GGUF file are saved."""
    return data_home() / "probe" / "models" / sha256


_loaded: dict[str, LanguageModel] = {}


def load_language_model(info: ModelInfo) -> LanguageModel:
    """Load the GGUF model in torch (bf16, greedy-ready, eval mode); later calls reuse the instance.

    Side effect: the first load of a model writes about 3.4 GB (for the default) to the data folder.
    """
    if info.sha256 in _loaded:
        return _loaded[info.sha256]
    require_packages()
    folder = cache_folder(info.sha256)
    if (folder / CACHE_COMPLETE_MARKER).exists():
        language_model = load_saved(folder, info.sha256)
    else:
        check_architecture(info.path)
        language_model = load_gguf(info)
        save_to_cache(language_model, folder)
    _loaded.clear()  # at most one torch model in memory per process
    _loaded[info.sha256] = language_model
    return language_model


def load_gguf(info: ModelInfo) -> LanguageModel:
    """Convert the GGUF file with transformers, offline, dequantising every weight to bf16."""
    os.environ["HF_HUB_OFFLINE"] = "1"  # read before transformers is first imported in this process
    torch = import_package("torch")
    transformers = import_package("transformers")
    folder, name = str(info.path.parent), info.path.name
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder, gguf_file=name, local_files_only=True)
    model = transformers.AutoModelForCausalLM.from_pretrained(
        folder,
        gguf_file=name,
        dtype=torch.bfloat16,
        quantization_config=transformers.GgufConfig(dequantize=True),
        local_files_only=True,
    )
    model.eval()
    return LanguageModel(model=model, tokenizer=tokenizer, sha256=info.sha256)


def load_saved(folder: Path, sha256: str) -> LanguageModel:
    """Load a model and tokenizer saved by save_to_cache."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    torch = import_package("torch")
    transformers = import_package("transformers")
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16, local_files_only=True)
    model.eval()
    return LanguageModel(model=model, tokenizer=tokenizer, sha256=sha256)


def save_to_cache(language_model: LanguageModel, folder: Path) -> None:
    """Save the model and tokenizer under a temporary name and rename, so a partial save is never used."""
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    language_model.model.save_pretrained(partial)
    language_model.tokenizer.save_pretrained(partial)
    (partial / CACHE_COMPLETE_MARKER).write_text(language_model.sha256 + "\n", encoding="utf-8")
    shutil.rmtree(folder, ignore_errors=True)
    partial.replace(folder)
