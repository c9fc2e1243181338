// swift-tools-version:6.0
// In-process spawn latency of the Sandbox library (no CLI, no process start).
// A separate package so the main `swift build` and CI never build it:
//   swift build -c release --package-path bench/SpawnBench --scratch-path bench/SpawnBench/.build
import Foundation
import PackageDescription

// A path dependency's identity is its directory's name, which depends on where
// the repository was cloned; derive it instead of hard-coding "main" or "dgrid".
let repoIdentity = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .lastPathComponent.lowercased()

let package = Package(
    name: "SpawnBench",
    dependencies: [
        .package(path: "../.."),
    ],
    targets: [
        .executableTarget(
            name: "SpawnBench",
            dependencies: [.product(name: "Sandbox", package: repoIdentity)]
        ),
    ]
)
