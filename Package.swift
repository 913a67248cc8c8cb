// swift-tools-version:6.0
import PackageDescription

// Layers, bottom to top (a target only imports the ones below it):
//   CFastCGI, CLibCrypto      C shims over libfcgi and OpenSSL's libcrypto
//   CBuildInfo                the version and commit (scripts/build-release sets them)
//   MagicBellJWT              HS256 User JWT minting and verification
//   CCurl                     libcurl, loaded with dlopen on the first MagicBell call
//   CurlHTTP                  an HTTP client over it: deadlines, caps, cancellation, reuse
//   MagicBellAPI              a client for MagicBell's JwtService (six operations)
//   FastCGIServer             a threaded libfcgi responder (FCGX_Accept_r)
//   MagicBellFCGIApp          routing, identity, configuration, error mapping
//   magicbell-fcgi            the thin command-line executable
// Linux only: the server waits with epoll, signalfd and eventfd, and checks
// peers with SO_PEERCRED (see Sources/FastCGIServer).
let package = Package(
    name: "magicbell-fcgi",
    products: [
        .executable(name: "magicbell-fcgi", targets: ["magicbell-fcgi"]),
        .library(name: "MagicBellJWT", targets: ["MagicBellJWT"]),
        .library(name: "FastCGIServer", targets: ["FastCGIServer"]),
        .library(name: "MagicBellAPI", targets: ["MagicBellAPI"]),
        .library(name: "CurlHTTP", targets: ["CurlHTTP"]),
        // For Fuzz/ (libFuzzer targets), which drives the app's parsers directly.
        .library(name: "MagicBellFCGIApp", targets: ["MagicBellFCGIApp"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CFastCGI",
            providers: [.apt(["libfcgi-dev"])]
        ),
        .systemLibrary(
            name: "CLibCrypto",
            pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"])]
        ),
        .target(name: "CBuildInfo"),
        // The headers come from libcurl4-openssl-dev; the library is not
        // linked but loaded with dlopen (glibc 2.34+ has it in libc).
        .target(name: "CCurl"),
        .target(
            name: "MagicBellJWT",
            dependencies: ["CLibCrypto"]
        ),
        .target(
            name: "CurlHTTP",
            dependencies: ["CCurl"]
        ),
        .target(
            name: "MagicBellAPI",
            dependencies: ["CurlHTTP"]
        ),
        .target(
            name: "FastCGIServer",
            dependencies: [
                "CFastCGI",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "MagicBellFCGIApp",
            dependencies: [
                "CBuildInfo",
                "MagicBellJWT",
                "MagicBellAPI",
                "FastCGIServer",
                .product(name: "Logging", package: "swift-log"),
            ],
            // The console's files, embedded by scripts/embed-console (Console/ConsoleFiles.swift).
            exclude: ["Console/assets"]
        ),
        .executableTarget(
            name: "magicbell-fcgi",
            dependencies: [
                "MagicBellFCGIApp",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // A developer's tool, not shipped: prints MagicBell's API as the
        // models describe it (scripts/api-description).
        .executableTarget(
            name: "api-description",
            dependencies: ["MagicBellFCGIApp"]
        ),
        .testTarget(
            name: "MagicBellJWTTests",
            dependencies: ["MagicBellJWT", "TestSupport"]
        ),
        .target(
            name: "TestSupport",
            path: "Tests/TestSupport"
        ),
        .testTarget(
            name: "CurlHTTPTests",
            dependencies: ["CurlHTTP", "TestSupport"],
            exclude: ["scripted_server.py"]
        ),
        .testTarget(
            name: "MagicBellAPITests",
            dependencies: ["MagicBellAPI", "CurlHTTP", "TestSupport"]
        ),
        .testTarget(
            name: "MagicBellFCGIAppTests",
            dependencies: ["MagicBellFCGIApp", "FastCGIServer", "TestSupport"]
        ),
        .testTarget(
            name: "FastCGIServerTests",
            dependencies: ["FastCGIServer", "CFastCGI", "TestSupport", .product(name: "Logging", package: "swift-log")]
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: ["MagicBellJWT", "TestSupport"]
        ),
    ]
)
