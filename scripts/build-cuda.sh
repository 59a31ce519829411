#!/usr/bin/env bash
# Builds a loadable ggml backend (libggml-cuda.so, or a CPU backend for
# testing the loading mechanism on machines without a GPU) from the ggml
# sources that the lumen binary compiles, and puts it with the
# libggml-base.so it links into one directory for `lumen --backend-dir`
# (or lib/ beside the lumen binary, where lumen looks by default).
#
# It needs CMake and a C/C++ compiler (and nvcc for CUDA); not Go. SRC is
# either the github.com/ollama/ollama module directory (make cuda passes
# it) or an unpacked `make cuda-src` tarball, which holds the same files
# plus GGML_SOURCE.
#
#   scripts/build-cuda.sh cuda|cpu SRC BUILD_DIR OUT_DIR
#
# Environment:
#   CUDA_ARCHS   CUDA architectures (default "80;90": A100, H100/H200)
#   CPU_VARIANT  CPU variant for the cpu backend (default x64: any x86-64)
#   GGML_SOURCE  the sources' "module version" stamp (default: SRC/GGML_SOURCE)
#   JOBS         parallel compile jobs (default: all CPUs)
set -euo pipefail

usage() { echo "usage: $0 cuda|cpu SRC BUILD_DIR OUT_DIR" >&2; exit 2; }
[ $# -eq 4 ] || usage
backend=$1 src=$2 build=$3 out=$4
case $backend in
cuda) target=ggml-cuda lib=libggml-cuda.so ;;
cpu) target=ggml-cpu-${CPU_VARIANT:-x64} lib=libggml-cpu-${CPU_VARIANT:-x64}.so ;;
*) usage ;;
esac

die() { echo "build-cuda.sh: $*" >&2; exit 1; }
[ -f "$src/CMakeLists.txt" ] && [ -d "$src/ml/backend/ggml/ggml/src" ] ||
	die "$src is not a ggml source tree (want CMakeLists.txt and ml/backend/ggml/ggml)"
command -v cmake >/dev/null || die "cmake not found (apt-get install cmake)"
source=${GGML_SOURCE:-}
if [ -z "$source" ] && [ -f "$src/GGML_SOURCE" ]; then
	source=$(cat "$src/GGML_SOURCE")
fi
[ -n "$source" ] || die "say which ggml sources these are: set GGML_SOURCE or add SRC/GGML_SOURCE"

# CUDA is found by ollama's CMakeLists through check_language(CUDA), which
# looks for nvcc on PATH or $CUDACXX; without it there is no ggml-cuda
# target, so say so plainly instead.
cuda_args=()
if [ "$backend" = cuda ]; then
	nvcc=${CUDACXX:-$(command -v nvcc || true)}
	if [ -z "$nvcc" ] && [ -x /usr/local/cuda/bin/nvcc ]; then
		nvcc=/usr/local/cuda/bin/nvcc
	fi
	[ -n "$nvcc" ] || die "nvcc not found: install the CUDA toolkit, or set CUDACXX"
	cuda_args=("-DCMAKE_CUDA_COMPILER=$nvcc" "-DCMAKE_CUDA_ARCHITECTURES=${CUDA_ARCHS:-80;90}")
fi

generator=()
if command -v ninja >/dev/null; then
	generator=(-G Ninja)
fi

# ollama's top-level CMakeLists.txt is the smallest correct driver for its
# ggml tree (ggml's own top-level CMakeLists.txt is not in the module): it
# hard-sets BUILD_SHARED_LIBS, GGML_BACKEND_DL, GGML_BACKEND_SHARED and the
# CUDA options (flash attention, graphs), and adds ggml-cuda when
# check_language(CUDA) finds nvcc, so GGML_CUDA=ON is implied. Only the one
# backend target (and ggml-base, which it links) is built. $ORIGIN lets the
# backend find libggml-base.so beside it.
cmake -S "$src" -B "$build" "${generator[@]}" \
	-DCMAKE_BUILD_TYPE=Release \
	-DCMAKE_DISABLE_FIND_PACKAGE_Vulkan=ON \
	-DCMAKE_BUILD_WITH_INSTALL_RPATH=ON \
	'-DCMAKE_INSTALL_RPATH=$ORIGIN' \
	"${cuda_args[@]}"
cmake --build "$build" --target "$target" --parallel "${JOBS:-$(nproc)}"

built=$build/lib/ollama
mkdir -p "$out"
cp -P "$built"/libggml-base.so* "$out"/
cp "$built/$lib" "$out"/
printf '%s\n' "$source" >"$out/ggml-source.txt"

missing=$(ldd "$out/$lib" | grep 'not found' || true)
if [ -n "$missing" ]; then
	echo "build-cuda.sh: warning: $lib needs libraries this machine cannot find:" >&2
	echo "$missing" >&2
fi
echo "built $out/$lib ($source)"
