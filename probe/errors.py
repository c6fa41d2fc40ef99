"""Typed errors of the perturbation probe; cli.py shows each as one message with exit code 1."""

from __future__ import annotations

from router.errors import RouterError

INSTALL_HINT = 'pip install -e ".[probe]"'


class ProbeError(RouterError):
    """A probe that cannot run: a missing package, an unsupported model or invalid input."""


class MissingPackageError(ProbeError):
    """torch, transformers or another package of the probe extra is not installed."""

    def __init__(self, package: str) -> None:
        super().__init__(f"the probe needs the Python package {package!r}, which is not installed: run {INSTALL_HINT}")
        self.package = package


class UnsupportedModelError(ProbeError):
    """A GGUF model whose architecture transformers cannot load."""


class LayerRangeError(ProbeError):
    """A decoder layer index outside the model's layers."""


class EmptyTextError(ProbeError):
    """A protocol whose text is empty, so no vector can be built from it."""


class CalibrationFileError(ProbeError):
    """A calibration case file that cannot be read or contains an invalid item."""


class SettingsError(ProbeError):
    """A probe settings file that cannot be read or contains invalid values."""
