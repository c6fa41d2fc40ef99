#!/usr/bin/env bash
# Set up protocol-router from scratch: a virtual environment in .venv, every dependency,
# and the default model assembled into the data folder with its SHA-256 verified.
# llama-cpp-python has no wheel on PyPI for this platform, so pip compiles it (about 5 minutes).
set -euo pipefail
cd "$(dirname "$0")"

python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip

# LLAVA_BUILD=OFF skips the multimodal library, which the router does not use.
export CMAKE_ARGS="${CMAKE_ARGS:--DLLAVA_BUILD=OFF}"
.venv/bin/python -m pip install --quiet "torch==2.13.0"
.venv/bin/python -m pip install --quiet -e ".[model,probe,dev]"

.venv/bin/protocol model install
echo "Set-up complete. Try: .venv/bin/protocol ask \"post-anaesthesia, temperature 104F, rigid. What treatment?\""
