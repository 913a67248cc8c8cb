#include "build_info.h"

// Present only on the include path scripts/build-release adds.
#if __has_include(<magicbell_build_info.h>)
#include <magicbell_build_info.h>
#endif

#ifndef MAGICBELL_BUILD_VERSION
#define MAGICBELL_BUILD_VERSION "dev"
#endif
#ifndef MAGICBELL_BUILD_COMMIT
#define MAGICBELL_BUILD_COMMIT "unknown"
#endif

const char *magicbell_build_version(void) { return MAGICBELL_BUILD_VERSION; }
const char *magicbell_build_commit(void) { return MAGICBELL_BUILD_COMMIT; }
