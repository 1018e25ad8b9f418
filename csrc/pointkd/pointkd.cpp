// The pointkd library: `torch.ops.pointkd` and the `pointkd._C` module.
#include "../common/library.h"

KD_DEFINE_LIBRARY(pointkd)
