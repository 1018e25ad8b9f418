"""Build script for geokd's compiled libraries ``graphkd._C`` and ``pointkd._C``.

Decisions, each printed while building:

* CPU kernels are always built (``-O3``, OpenMP through ``at::parallel_for``).
* CUDA kernels (``csrc/*/cuda/*.cu``) are built when ``FORCE_CUDA=1``, or when
  torch is a CUDA build and a CUDA toolkit is found; ``FORCE_ONLY_CPU=1`` skips
  them.
* ``GEOKD_NO_EXTENSION=1`` builds no library at all (pure-Python install; the
  ops then raise an error that says how to rebuild).
* ``TORCH_CUDA_ARCH_LIST`` selects the GPU architectures; without it and
  without a visible GPU, a default list for the toolkit's version is used.

Metadata lives in ``pyproject.toml``; this file only describes the extensions.
"""

import glob
import os
import shutil
import sys

from setuptools import setup

ROOT = os.path.dirname(os.path.abspath(__file__))
PACKAGES_WITH_LIBRARY = ("graphkd", "pointkd")


def log(message):
    print(f"[geokd setup] {message}", file=sys.stderr, flush=True)


def env_flag(name):
    return os.environ.get(name, "0").strip().lower() in ("1", "true", "yes", "on")


def find_cuda_home():
    """Locate the CUDA toolkit before torch.utils.cpp_extension guesses.

    torch takes the parent of the directory holding ``nvcc`` on PATH, which is
    wrong when ``nvcc`` is a wrapper script (e.g. ``/usr/local/bin/nvcc``).
    """
    candidates = [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"]
    nvcc = shutil.which("nvcc")
    if nvcc:
        candidates.append(os.path.dirname(os.path.dirname(os.path.realpath(nvcc))))
    candidates += sorted(glob.glob("/usr/local/cuda-*"), reverse=True)
    for candidate in candidates:
        if candidate and os.path.exists(os.path.join(candidate, "bin", "nvcc")) and os.path.exists(
            os.path.join(candidate, "include", "cuda_runtime.h")
        ):
            return candidate
    return None


def pip_cuda_include_dirs():
    """Headers of the CUDA libraries that a CUDA torch wheel pulls in.

    ATen's CUDA headers include cuBLAS/cuSPARSE/cuSOLVER headers, which a
    minimal toolkit may lack; the ``nvidia-*`` wheels next to torch ship them.
    """
    import torch

    site = os.path.dirname(os.path.dirname(torch.__file__))
    patterns = [os.path.join(site, "nvidia", "*", "include"), os.path.join(site, "nvidia", "*", "*", "include")]
    return sorted({path for pattern in patterns for path in glob.glob(pattern) if os.path.isdir(path)})


def default_arch_list(cuda_version):
    major = int(cuda_version.split(".")[0])
    if major >= 13:
        return "7.5;8.0;8.6;8.9;9.0;10.0;12.0+PTX"
    if major == 12:
        return "6.0;7.0;7.5;8.0;8.6;8.9;9.0+PTX"
    return "6.0;7.0;7.5;8.0;8.6+PTX"


def get_extensions():
    if env_flag("GEOKD_NO_EXTENSION"):
        log("GEOKD_NO_EXTENSION=1: building no compiled library (pure-Python install)")
        return [], {}

    cuda_home = find_cuda_home()
    if cuda_home and not os.environ.get("CUDA_HOME"):
        os.environ["CUDA_HOME"] = cuda_home

    import torch
    from torch.utils.cpp_extension import BuildExtension, CppExtension, CUDAExtension

    if env_flag("FORCE_ONLY_CPU"):
        with_cuda, reason = False, "FORCE_ONLY_CPU=1"
    elif env_flag("FORCE_CUDA"):
        with_cuda, reason = True, "FORCE_CUDA=1"
    elif torch.version.cuda is None:
        with_cuda, reason = False, f"torch {torch.__version__} is a CPU build"
    elif cuda_home is None:
        with_cuda, reason = False, "no CUDA toolkit found (set CUDA_HOME)"
    else:
        with_cuda, reason = True, f"torch {torch.__version__} is a CUDA {torch.version.cuda} build and CUDA_HOME={cuda_home}"
    if with_cuda and torch.version.cuda is None:
        raise RuntimeError(
            f"FORCE_CUDA=1 but torch {torch.__version__} is a CPU build; install a CUDA build of torch first"
        )
    if with_cuda and cuda_home is None:
        raise RuntimeError("FORCE_CUDA=1 but no CUDA toolkit was found; set CUDA_HOME to its root")
    log(f"CUDA kernels: {'yes' if with_cuda else 'no'} ({reason})")

    # The C++ standard is left to torch, which knows what its headers need.
    cxx_flags = ["-O3"]
    define_macros = []
    if torch.backends.openmp.is_available() and sys.platform != "darwin":
        cxx_flags += ["-fopenmp"]
        define_macros.append(("AT_PARALLEL_OPENMP", "1"))
        log("CPU parallelism: OpenMP (at::parallel_for)")
    else:
        log("CPU parallelism: torch's native thread pool (at::parallel_for)")
    extra_link_args = ["-fopenmp"] if ("-fopenmp" in cxx_flags) else []
    extra_compile_args = {"cxx": cxx_flags}
    include_dirs = [os.path.join(ROOT, "csrc")]

    if with_cuda:
        define_macros.append(("WITH_CUDA", None))
        extra_compile_args["nvcc"] = ["-O3", "--expt-relaxed-constexpr"]
        extra_include = pip_cuda_include_dirs()
        if extra_include:
            log(f"adding {len(extra_include)} include dirs of the nvidia-* wheels next to torch")
        include_dirs += extra_include
        if not os.environ.get("TORCH_CUDA_ARCH_LIST"):
            if torch.cuda.is_available():
                log("TORCH_CUDA_ARCH_LIST not set: building for the visible GPUs")
            else:
                os.environ["TORCH_CUDA_ARCH_LIST"] = default_arch_list(torch.version.cuda)
                log(f"TORCH_CUDA_ARCH_LIST not set and no GPU visible: using {os.environ['TORCH_CUDA_ARCH_LIST']}")
        else:
            log(f"TORCH_CUDA_ARCH_LIST={os.environ['TORCH_CUDA_ARCH_LIST']}")

    extensions = []
    for package in PACKAGES_WITH_LIBRARY:
        source_dir = os.path.join("csrc", package)
        sources = sorted(glob.glob(os.path.join(source_dir, "*.cpp")))
        sources += sorted(glob.glob(os.path.join(source_dir, "cpu", "*.cpp")))
        if with_cuda:
            sources += sorted(glob.glob(os.path.join(source_dir, "cuda", "*.cu")))
        extension_class = CUDAExtension if with_cuda else CppExtension
        extensions.append(
            extension_class(
                name=f"{package}._C",
                sources=sources,
                include_dirs=include_dirs,
                define_macros=define_macros,
                extra_compile_args=extra_compile_args,
                extra_link_args=extra_link_args,
            )
        )
        log(f"{package}._C: {len(sources)} sources")
    use_ninja = shutil.which("ninja") is not None or _has_ninja_module()
    return extensions, {"build_ext": BuildExtension.with_options(no_python_abi_suffix=False, use_ninja=use_ninja)}


def _has_ninja_module():
    try:
        import ninja  # noqa: F401
    except ImportError:
        return False
    return True


ext_modules, cmdclass = get_extensions()
setup(ext_modules=ext_modules, cmdclass=cmdclass)
