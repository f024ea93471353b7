#!/usr/bin/env bash
# P7: GPU offload, measured. For a machine with an NVIDIA GPU and no network; finishes in < 10 minutes.
#
#   bench/gpu/run.sh MODEL.gguf [LLAMA_CPP_SDIST_DIR_OR_WHEEL]
#
# 1. Installs llama-cpp-python with CUDA: a wheel built beforehand when one is given, else a build
#    from the unpacked sdist (CMAKE_ARGS="-DGGML_CUDA=on -DCMAKE_CUDA_ARCHITECTURES=90", no build
#    isolation, as nothing can be fetched). The build takes about 5 minutes on 16 cores.
# 2. Runs bench/gpu/measure.py: generation tokens/s with n_gpu_layers=-1 against the same model on the
#    CPU (n_gpu_layers=0), and the batched path (1, 8, 32 sequences) on the GPU.
# Everything the machine needs travels with the repository: this script, the model file and the
# sdist (or wheel). The embedded SmolLM2-135M GGUF is 98 MB; carry it, or any GGUF, as MODEL.gguf.
set -euo pipefail
cd "$(dirname "$0")/../.."
MODEL=${1:?usage: bench/gpu/run.sh MODEL.gguf [SDIST_DIR_OR_WHEEL]}
SOURCE=${2:-}
OUT=${OUT:-bench/gpu/out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/card.txt"
python3 -m venv --system-site-packages .gpu-venv
PY=.gpu-venv/bin/python
if [[ "$SOURCE" == *.whl ]]; then
    $PY -m pip install --no-index --no-deps "$SOURCE"
elif [[ -n "$SOURCE" ]]; then
    CMAKE_ARGS="-DGGML_CUDA=on -DCMAKE_CUDA_ARCHITECTURES=90" CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) \
        $PY -m pip wheel --no-deps --no-build-isolation -w "$OUT/wheel" "$SOURCE" 2>&1 | tail -3
    $PY -m pip install --no-index --no-deps "$OUT"/wheel/llama_cpp_python-*.whl
fi
$PY -c "import llama_cpp, sys; ok = llama_cpp.llama_supports_gpu_offload(); print('gpu offload:', ok); sys.exit(0 if ok else 1)"
PYTHONPATH=. $PY bench/gpu/measure.py "$MODEL" | tee "$OUT/p7.txt"
