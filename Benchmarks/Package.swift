// swift-tools-version:6.0
// The in-process benchmark, outside the product build (as vapor/jwt-kit
// keeps its Benchmarks/): `swift run -c release --package-path Benchmarks token-bench`.
import Foundation
import PackageDescription

// SwiftPM names a path dependency after its folder: the clone's name.
let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
let rootPackage = root.lastPathComponent.lowercased()

let package = Package(
    name: "magicbell-fcgi-benchmarks",
    dependencies: [.package(path: "..")],
    targets: [
        // The floor: OpenSSL's HMAC-SHA256 alone, in a C loop.
        .target(
            name: "HMACReference",
            path: "Sources/HMACReference",
            linkerSettings: [.linkedLibrary("crypto")]
        ),
        .executableTarget(
            name: "token-bench",
            dependencies: ["HMACReference", .product(name: "MagicBellJWT", package: rootPackage)],
            path: "Sources/token-bench"
        ),
    ]
)
