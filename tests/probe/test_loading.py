"""Loading the model in torch: missing packages, unsupported GGUF architectures, the disk cache."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from probe import loading
from probe.errors import LayerRangeError, MissingPackageError, UnsupportedModelError
from probe.loading import LanguageModel, check_architecture, check_layer, gguf_architecture, load_saved, save_to_cache
from router.model import ModelInfo


def write_gguf(path: Path, architecture: str) -> Path:
    """Write a metadata-only GGUF file with one small tensor."""
    import gguf
    import numpy

    writer = gguf.GGUFWriter(str(path), architecture)
    writer.add_block_count(1)
    writer.add_tensor("token_embd.weight", numpy.zeros((4, 4), dtype=numpy.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_missing_package_names_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    real_import = importlib.import_module

    def fake_import(name: str, *args: object) -> object:
        if name == "transformers":
            raise ImportError("No module named 'transformers'")
        return real_import(name, *args)

    monkeypatch.setattr(loading.importlib, "import_module", fake_import)
    with pytest.raises(MissingPackageError) as raised:
        loading.require_packages()
    assert "'transformers'" in str(raised.value)
    assert 'pip install -e ".[probe]"' in str(raised.value)


def test_architecture_read_from_metadata(tmp_path: Path) -> None:
    assert gguf_architecture(write_gguf(tmp_path / "tiny.gguf", "qwen2")) == "qwen2"
    assert check_architecture(tmp_path / "tiny.gguf") == "qwen2"


def test_unsupported_architecture_named(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "odd.gguf", "rwkv-unheard-of")
    with pytest.raises(UnsupportedModelError) as raised:
        check_architecture(path)
    message = str(raised.value)
    assert "'rwkv-unheard-of'" in message
    assert "qwen2" in message
    assert "--model" in message


def test_unsupported_architecture_rejected_before_loading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_gguf(tmp_path / "odd.gguf", "rwkv-unheard-of")
    info = ModelInfo(name="odd", path=path, source="--model", size=path.stat().st_size, sha256="0" * 64)

    def not_called(*args: object) -> None:
        raise AssertionError("transformers must not be asked to load an unsupported file")

    monkeypatch.setattr(loading, "load_gguf", not_called)
    with pytest.raises(UnsupportedModelError):
        loading.load_language_model(info)


@pytest.mark.parametrize("index", [-1, 28, 100], ids=["negative", "one-past-end", "far"])
def test_layer_out_of_range(index: int) -> None:
    with pytest.raises(LayerRangeError, match="has 28 decoder layers, so use 0 to 27"):
        check_layer(index, 28)


def test_cache_round_trip(tiny_model: LanguageModel, tmp_path: Path) -> None:
    import torch

    folder = tmp_path / "cache" / "tiny"
    save_to_cache(tiny_model, folder)
    assert (folder / loading.CACHE_COMPLETE_MARKER).exists()
    assert not folder.with_name("tiny.partial").exists()
    reloaded = load_saved(folder, tiny_model.sha256)
    ids = torch.tensor([[5, 6, 7]])
    with torch.inference_mode():
        expected = tiny_model.model(input_ids=ids).logits
        # load_saved uses bf16, as the probe does for the real model.
        actual = reloaded.model(input_ids=ids).logits.float()
    assert reloaded.tokenizer.chat_template == tiny_model.tokenizer.chat_template
    assert torch.allclose(actual, expected, atol=0.1)
