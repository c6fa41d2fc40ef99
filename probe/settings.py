"""The probe's fixed settings: shipped defaults, overridden by the file that `protocol calibrate` writes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from probe.errors import SettingsError
from router.paths import data_home

VectorKind = Literal["contrast", "protocol"]

# Chosen by `protocol calibrate` on the default 1.5B model over 116 scored items and two sweeps (layers 10,
# 14 and 18, strengths 0.25-0.5, contrast and protocol vectors): the protocol vector at layer 14 and
# 0.5 x the hidden-state norm flagged 27 of 69 wrong answers (39 %, 95 % interval 28-51 %) and 7 of
# 47 right ones (15 %, 7-28 %). benchmarks/RESULTS-probe.md has the table and the runs.
DEFAULT_LAYER = 14
DEFAULT_STRENGTH = 0.5
DEFAULT_VECTOR_KIND: VectorKind = "protocol"
DEFAULT_MAX_VECTORS = 1
CHOICE_TOKENS = 48  # enough for {"protocols": [...]} with four long ids
# The answer prompt asks for the specific treatment first, so the key drug usually comes early.
# NOTE: an answer that restates the question can be cut before it names the drug; the reading then
# sees no drug, and a rerun that reaches it counts as a flip.
ANSWER_TOKENS = 32
RANDOM_SEED = 0
MAX_STRENGTH = 5.0  # a loose bound: at 0.5 the push already changes many right answers (benchmarks/RESULTS-probe.md)


class ProbeSettings(BaseModel):
    """The layer, strength and vectors that every probe uses; fixed after calibration, never per query."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    layer: int = Field(default=DEFAULT_LAYER, ge=0)
    strength: float = Field(default=DEFAULT_STRENGTH, ge=0.0, le=MAX_STRENGTH)  # a multiple of the hidden-state norm
    vector_kind: VectorKind = DEFAULT_VECTOR_KIND
    max_vectors: int = Field(default=DEFAULT_MAX_VECTORS, ge=1, le=16)
    choice_tokens: int = Field(default=CHOICE_TOKENS, ge=1, le=512)
    answer_tokens: int = Field(default=ANSWER_TOKENS, ge=1, le=1024)
    seed: int = RANDOM_SEED
    source: str = "shipped default"  # where the values came from, such as the calibration file and date


def settings_path() -> Path:
    """Return the settings file that `protocol calibrate` writes and `protocol probe` reads."""
    return data_home() / "probe-settings.json"


def load_settings(path: Path | None = None) -> ProbeSettings:
    """Read the calibrated settings, or return the shipped defaults when no file exists."""
    path = path or settings_path()
    if not path.exists():
        return ProbeSettings()
    try:
        return ProbeSettings.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except ValidationError as error:
        reason = "; ".join(f"{'.'.join(map(str, issue['loc'])) or 'file'}: {issue['msg']}" for issue in error.errors())
    except (OSError, ValueError) as error:
        reason = str(error)
    raise SettingsError(
        f"probe settings file {path} is invalid ({reason}): fix it, delete it to use the shipped defaults, "
        "or run 'protocol calibrate' again"
    )


def save_settings(settings: ProbeSettings, path: Path | None = None) -> Path:
    """Write the settings atomically and return the file's path."""
    path = path or settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(settings.model_dump(), indent=2) + "\n", encoding="utf-8")
    temporary.replace(path)
    return path
