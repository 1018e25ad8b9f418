// Defines one compiled library of geokd: the `torch.ops.<ns>` namespace with
// its build-info ops, and the `<package>._C` Python module through which the
// loader locates the shared object. Each op adds its schema with
// TORCH_LIBRARY_FRAGMENT(ns, m) in its own file.
#pragma once

#include <Python.h>

#include <torch/library.h>

#include "build_info.h"

// `import <package>._C` must succeed so that the library can be found like any
// extension module; the ops themselves are reached through torch.ops, never
// through Python bindings, so that torch.compile and opcheck see them.
#define KD_DEFINE_LIBRARY(ns)                                                \
  extern "C" PyObject* PyInit__C(void) {                                     \
    static struct PyModuleDef module_def = {PyModuleDef_HEAD_INIT, "_C",     \
                                            nullptr, -1, nullptr};           \
    return PyModule_Create(&module_def);                                     \
  }                                                                          \
  TORCH_LIBRARY(ns, m) { KD_REGISTER_BUILD_INFO(m); }
