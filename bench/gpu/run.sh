#!/usr/bin/env bash
# P7: GPU offload, measured. For a machine with an NVIDIA GPU (sm_90: H100/H200) and no network, such
# as the device tool's; all it needs travels in .gpu-carry/, which bench/gpu/prepare.sh builds on a
# machine with network (51 MiB: model 45.5, sdist 2.5, wheels 2.7). From the session's machine:
#
#   device run: command "bash bench/gpu/run.sh", carry [".gpu-carry"], timeout_s 600
#
#   bash bench/gpu/run.sh [MODEL.gguf] [SDIST_DIR_OR_TARBALL_OR_WHEEL] [measure.py options...]
#
# MODEL defaults to .gpu-carry/*.gguf: the embedded SmolLM2-135M re-quantized to Q2_0 (its Q4_1
# file is 98 MB, too big to carry); its figures are tokens/s of this architecture at Q2_0, not of the
# Q4_1 file. SOURCE defaults to .gpu-carry/llama_cpp_python-*-cuda-src.tar.gz; "installed" (or
# no SOURCE and no tarball) uses the llama_cpp that python3 already imports. Arguments from the first
# one that starts with "--" go to bench/gpu/measure.py (--tokens N, --sequences 1,8,32, --repeats N,
# --threads N). CPU_ONLY=1 is a dry run for a machine without a GPU (bench/gpu/prepare.sh runs one):
# no nvidia-smi, no build, measure.py --cpu-only.
#
# 1. Installs .gpu-carry/wheels (pydantic, diskcache, ...: what measure.py needs and the device image
#    lacks) into $GPU_TMP/site (default /tmp/gpu-p7/site) and puts it on PYTHONPATH.
# 2. Installs llama-cpp-python with CUDA: a wheel as given, else a build of the sdist with
#    CMAKE_ARGS="-DGGML_CUDA=on -DCMAKE_CUDA_ARCHITECTURES=90 ..." (no flash-attention kernels: the
#    sandbox never turns flash attention on; no common library, mtmd, tests, tools or examples),
#    CMAKE_BUILD_PARALLEL_LEVEL=$(nproc), no build isolation and no index, as nothing can be fetched.
#    EXTRA_CMAKE_ARGS is appended (e.g. -DGGML_CUDA_FA=ON). The build has not been timed on the
#    device yet: expected 3 to 5 minutes on 16 cores; this script prints its time. Its folders stay
#    in $GPU_TMP, so a second call on the still-warm machine reuses the wheel (REBUILD=1 forces a
#    build) or, after a build cut short, goes on incrementally.
# 3. Runs bench/gpu/measure.py: generation tokens/s with n_gpu_layers=-1 against the same model on the
#    CPU (n_gpu_layers=0), and the batched path (1, 8, 32 sequences) on the GPU: about a minute.
# Writes to $OUT (default bench/gpu/out): card.txt (GPU, toolchain), build.log, p7.txt (the figures).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
CARRY=${GPU_CARRY:-$ROOT/.gpu-carry}
POSITIONAL=()
while [[ $# -gt 0 && "$1" != --* ]]; do
    POSITIONAL+=("$1")
    shift
done
MODEL=${POSITIONAL[0]:-}
SOURCE=${POSITIONAL[1]:-}
if [[ -z "$MODEL" ]]; then
    MODEL=$(ls "$CARRY"/*.gguf 2>/dev/null | head -1 || true)
    [[ -n "$MODEL" ]] || { echo "no MODEL.gguf given and none in $CARRY (run bench/gpu/prepare.sh)" >&2; exit 2; }
fi
if [[ -z "$SOURCE" ]]; then
    SOURCE=$(ls "$CARRY"/llama_cpp_python-*-cuda-src.tar.gz 2>/dev/null | head -1 || true)
fi
[[ "$SOURCE" == installed ]] && SOURCE=""
CPU_ONLY=${CPU_ONLY:-}
if [[ -n "$CPU_ONLY" ]]; then
    set -- --cpu-only "$@"
    [[ "$SOURCE" == *.whl ]] || SOURCE=""
fi
OUT=${OUT:-bench/gpu/out}
GPU_TMP=${GPU_TMP:-/tmp/gpu-p7}
PY=${PYTHON:-python3}
SITE=$GPU_TMP/site
mkdir -p "$OUT" "$SITE"
started=$SECONDS
stamp() { echo "[$((SECONDS - started)) s] $*"; }

{
    if [[ -n "$CPU_ONLY" ]]; then
        echo "CPU_ONLY: no GPU asked for"
    else
        nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    fi
    echo "nproc $(nproc); $("$PY" -V 2>&1) at $(command -v "$PY")"
    nvcc --version 2>&1 | tail -2 || echo "no nvcc"
    cmake --version 2>&1 | head -1 || echo "no cmake"
    "$PY" -m pip --disable-pip-version-check list 2>/dev/null | grep -iE "^(scikit-build-core|cmake|ninja|numpy) " || true
} 2>&1 | tee "$OUT/card.txt"

# The CUDA toolkit's libraries: cuBLAS for the build, and for the loader in case the libraries'
# RUNPATH does not name them.
CUDA_LIBS=""
for dir in ${CUDA_HOME:-} ${CUDA_PATH:-} /usr/local/cuda /usr/local/cuda-13*; do
    for lib in "$dir/lib64" "$dir/targets/x86_64-linux/lib"; do
        [[ -e "$lib/libcublas.so" ]] && CUDA_LIBS=${CUDA_LIBS:+$CUDA_LIBS:}$lib
    done
done
CUBLAS_ARGS=""
if [[ -z "$CUDA_LIBS" && -z "$CPU_ONLY" ]] && ! ldconfig -p 2>/dev/null | grep -q 'libcublas\.so '; then
    # No cuBLAS beside nvcc: PyTorch's pip packages (nvidia-cublas) hold its library and headers.
    nv=$("$PY" -c "import nvidia; print(list(nvidia.__path__)[0])" 2>/dev/null || true)
    so=$(find "${nv:-/nonexistent}" -name 'libcublas.so*' 2>/dev/null | head -1)
    lt=$(find "${nv:-/nonexistent}" -name 'libcublasLt.so*' 2>/dev/null | head -1)
    header=$(find "${nv:-/nonexistent}" -name cublas_v2.h 2>/dev/null | head -1)
    if [[ -n "$so" && -n "$lt" && -n "$header" ]]; then
        inc=$(dirname "$header")
        CUBLAS_ARGS="-DCUDA_cublas_LIBRARY=$so -DCUDA_cublasLt_LIBRARY=$lt -DCMAKE_CUDA_FLAGS=-I$inc -DCMAKE_CXX_FLAGS=-I$inc"
        CUDA_LIBS=$(dirname "$so")
    fi
    echo "no libcublas.so beside nvcc; from pip's nvidia packages: ${so:-none} ${header:-}" | tee -a "$OUT/card.txt"
fi
if [[ -n "$CUDA_LIBS" ]]; then
    export LD_LIBRARY_PATH=$CUDA_LIBS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
fi

if compgen -G "$CARRY/wheels/*.whl" >/dev/null; then
    "$PY" -m pip install -q --disable-pip-version-check --root-user-action=ignore --no-index --no-deps \
        --no-compile --no-cache-dir --upgrade --target "$SITE" "$CARRY"/wheels/*.whl
    stamp "installed $(ls "$CARRY"/wheels/*.whl | wc -l) wheels from $CARRY/wheels into $SITE"
fi
export PYTHONPATH="$ROOT:$SITE${PYTHONPATH:+:$PYTHONPATH}"

CMAKE_ARGS="-DGGML_CUDA=on -DCMAKE_CUDA_ARCHITECTURES=90 -DGGML_CUDA_FA=OFF -DGGML_CUDA_NCCL=OFF"
CMAKE_ARGS+=" -DLLAVA_BUILD=OFF -DLLAMA_BUILD_COMMON=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF"
CMAKE_ARGS+=" -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_OPENSSL=OFF $CUBLAS_ARGS ${EXTRA_CMAKE_ARGS:-}"
WHEEL=""
if [[ "$SOURCE" == *.whl ]]; then
    WHEEL=$SOURCE
elif [[ -n "$SOURCE" ]]; then
    if [[ -f "$SOURCE" ]]; then
        key=$(sha256sum "$SOURCE" | cut -c1-16)
    else
        key=$(realpath "$SOURCE" | sha256sum | cut -c1-16)
    fi
    key+=-$(echo "$CMAKE_ARGS" | sha256sum | cut -c1-16)
    WHEELS=$GPU_TMP/wheel-$key
    WHEEL=$(ls "$WHEELS"/llama_cpp_python-*.whl 2>/dev/null | head -1 || true)
    if [[ -n "$WHEEL" && -z "${REBUILD:-}" ]]; then
        stamp "reusing $WHEEL, built from this source earlier on this machine"
    else
        if [[ -f "$SOURCE" ]]; then  # unpacked to a fixed folder, so that the build folder stays valid
            SRC=$GPU_TMP/src-${key%%-*}
            if [[ ! -d "$SRC" ]]; then
                mkdir -p "$SRC.part" && tar -xzf "$SOURCE" -C "$SRC.part" --strip-components=1 && mv "$SRC.part" "$SRC"
            fi
        else
            SRC=$SOURCE
        fi
        stamp "building llama-cpp-python from $SOURCE with CMAKE_ARGS=$CMAKE_ARGS"
        build_started=$SECONDS
        if ! CMAKE_ARGS="$CMAKE_ARGS" CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) \
            "$PY" -m pip wheel -v --disable-pip-version-check --no-deps --no-build-isolation --no-index \
            --config-settings=build-dir="$GPU_TMP/build-$key" -w "$WHEELS" "$SRC" >"$OUT/build.log" 2>&1; then
            tail -40 "$OUT/build.log"
            stamp "build failed after $((SECONDS - build_started)) s; the whole log is $OUT/build.log"
            exit 1
        fi
        WHEEL=$(ls "$WHEELS"/llama_cpp_python-*.whl | head -1)
        stamp "built $(basename "$WHEEL") ($(du -m "$WHEEL" | cut -f1) MiB) in $((SECONDS - build_started)) s"
    fi
fi
if [[ -n "$WHEEL" ]]; then
    "$PY" -m pip install -q --disable-pip-version-check --root-user-action=ignore --no-index --no-deps \
        --no-compile --upgrade --target "$SITE" "$WHEEL"
fi
"$PY" -c "import llama_cpp, sys; ok = llama_cpp.llama_supports_gpu_offload(); print('llama_cpp', llama_cpp.__version__, 'from', llama_cpp.__file__, '- gpu offload:', ok); sys.exit(0 if ok or sys.argv[1] else 1)" "$CPU_ONLY"
stamp "measuring $MODEL"
PYTHONUNBUFFERED=1 "$PY" bench/gpu/measure.py "$MODEL" "$@" | tee "$OUT/p7.txt"
stamp "done"
