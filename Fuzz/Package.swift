// swift-tools-version:6.0
// libFuzzer targets for every parser and encoder magicbell-fcgi owns. Only
// scripts/fuzz builds them, with -sanitize=fuzzer,address for every module.
// Each is a plain executable whose main hands its input callback to
// libFuzzer (FuzzDriver).
import Foundation
import PackageDescription

// SwiftPM names a path dependency after its folder: the clone's name.
let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
let rootPackage = root.lastPathComponent.lowercased()

func fuzzTarget(_ name: String, _ products: [String]) -> Target {
    .executableTarget(
        name: name,
        dependencies: ["FuzzDriver"] + products.map { .product(name: $0, package: rootPackage) },
        path: "Sources/\(name)"
    )
}

let package = Package(
    name: "magicbell-fcgi-fuzz",
    dependencies: [.package(path: "..")],
    targets: [
        .target(name: "FuzzDriver", path: "Sources/FuzzDriver"),
        fuzzTarget("fuzz-fastcgi-connection", ["FastCGIServer"]),
        fuzzTarget("fuzz-request-params", ["MagicBellFCGIApp", "FastCGIServer", "MagicBellJWT"]),
        fuzzTarget("fuzz-admin-request", ["MagicBellFCGIApp", "FastCGIServer"]),
        fuzzTarget("fuzz-claims-json", ["MagicBellJWT"]),
    ]
)
