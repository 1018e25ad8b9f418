// The graphkd library: `torch.ops.graphkd` and the `graphkd._C` module.
#include "../common/library.h"

KD_DEFINE_LIBRARY(graphkd)
