/* Umbrella header of the CShims module. */
#include "dgrid_spawn.h"
#include "dgrid_sys.h"
#include "dgrid_unpack.h"
