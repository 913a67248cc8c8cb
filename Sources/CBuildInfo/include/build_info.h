#ifndef MAGICBELL_BUILD_INFO_H
#define MAGICBELL_BUILD_INFO_H

// The version and commit this binary was built from. scripts/build-release
// writes them (the version from debian/changelog, the commit from git) to a
// header on an include path of its own; every other build says "dev".
// Functions rather than macros, so that a new commit recompiles one C file,
// not every Swift module that imports this one.
const char *magicbell_build_version(void);
const char *magicbell_build_commit(void);

#endif
