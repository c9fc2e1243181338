// swift-tools-version:6.0
// Task-signature verification cost, in-process (Sources/Trust), against the
// peer a naive worker would use: `ssh-keygen -Y verify` per task.
// A separate package so the main `swift build` and CI never build it:
//   swift build -c release --package-path bench/SignBench --scratch-path bench/SignBench/.build
import Foundation
import PackageDescription

// A path dependency's identity is its directory's name (see bench/SpawnBench).
let repoIdentity = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .lastPathComponent.lowercased()

let package = Package(
    name: "SignBench",
    dependencies: [.package(path: "../..")],
    targets: [
        .executableTarget(name: "SignBench", dependencies: [.product(name: "Trust", package: repoIdentity)]),
    ]
)
