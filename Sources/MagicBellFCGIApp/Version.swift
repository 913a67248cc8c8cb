import CBuildInfo

/// What this binary was built from: the package's version (debian/changelog,
/// the one place it is written) and the git commit, both set by
/// scripts/build-release; "dev" and "unknown" in any other build.
public enum MagicBellFCGIVersion {
    public static let current = String(cString: magicbell_build_version())
    public static let commit = String(cString: magicbell_build_commit())
    /// What `--version` prints: `0.2.0 (commit 9b5f79a1c2d3)`.
    public static let description = "\(current) (commit \(commit))"
}
