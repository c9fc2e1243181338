// swift-tools-version:6.0
import PackageDescription

// Layers (docs/ARCHITECTURE.md §1): CShims (C, the kernel) ← Sandbox (OCI, Linux) ← Runner (tasks, Git) ← dgrid (CLI).
// Sandbox never imports Runner.
// lld with packed relative relocations (DT_RELR, glibc 2.36): the loader reads
// ~8 KB of relocations instead of ~1 MB on every start.
let leanLinking: [LinkerSetting] = [
    .unsafeFlags(["-use-ld=lld", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs"]),
]

let package = Package(
    name: "dgrid",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "dgrid", targets: ["dgrid"]),
        .executable(name: "dgrid-grid", targets: ["dgrid-grid"]),
        .executable(name: "dgrid-registry", targets: ["dgrid-registry"]),
        .executable(name: "dgrid-init", targets: ["dgrid-init"]),
        .library(name: "Sandbox", targets: ["Sandbox"]),
        // For bench/SignBench: task-signature verification, in-process.
        .library(name: "Trust", targets: ["Trust"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.25.0"),
        // The worker's config file (docs/worker.toml.example). Runner only, so
        // it is linked into `dgrid-remote` and never into `dgrid` (start latency).
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
        // Worker metrics (docs/ARCHITECTURE.md §12): Runner records through swift-metrics'
        // API only (CoreMetrics: no backend, no global); `dgrid-grid` alone links the
        // Prometheus registry that renders them. Neither pulls in NIO.
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // System libraries, found with pkg-config; headers are Debian's, never vendored.
        // libseccomp, libcap, libarchive, zstd and zlib are linked statically
        // (Sandbox's linker settings): every shared library is page faults and
        // relocations on each `dgrid` start, which is on the sandbox start path.
        // The shared libarchive alone dragged in libxml2 and ICU (30 MB) for
        // formats dgrid never reads. Only what dgrid calls is linked in.
        .systemLibrary(name: "CSeccomp", path: "Sources/CShims/CSeccomp",
                       providers: [.apt(["libseccomp-dev"])]),
        .systemLibrary(name: "CCap", path: "Sources/CShims/CCap",
                       providers: [.apt(["libcap-dev"])]),
        .systemLibrary(name: "CGit2", path: "Sources/CShims/CGit2", pkgConfig: "libgit2",
                       providers: [.apt(["libgit2-dev"])]),
        .systemLibrary(name: "CArchive", path: "Sources/CShims/CArchive",
                       providers: [.apt(["libarchive-dev"])]),
        // SHA-256 for the content store. Nettle, not swift-crypto: swift-crypto
        // imports Foundation, which links ICU's 34 MB of data into `dgrid` and
        // cost every start ~1.5 ms of page faults; nettle's sha256 is a plain
        // struct with SHA-NI code, and libarchive-dev already depends on it.
        .systemLibrary(name: "CNettle", path: "Sources/CShims/CNettle",
                       providers: [.apt(["nettle-dev"])]),
        // zlib's headers, to check the mirror's loose objects before libgit2 reads them.
        .systemLibrary(name: "CZlib", path: "Sources/CShims/CZlib", providers: [.apt(["zlib1g-dev"])]),
        // The spawn path: everything between clone() and execve() lives here, in C.
        .target(name: "CShims", path: "Sources/CShims/Shim",
                cSettings: [.unsafeFlags(["-Wall", "-Wextra", "-Werror", "-fno-strict-aliasing"])]),
        // pid 1 of every sandbox after setup: exec'd from a sealed memfd so no
        // byte of the worker stays in the sandbox (docs/THREATS.md, T1). C with
        // no C library (init_syscall.h, init_start.c): it is copied into a memfd
        // and exec'd on every start, and static glibc made it 700 KB and ran
        // glibc's CPUID probes (a hypervisor trap each) before main — 1.3 ms of
        // every `sandbox run` (bench/sandbox-start.sh). Now ~7 KB, nothing before
        // main. swiftc still links swiftrt.o; init.c stubs its two symbols and no
        // constructor runs.
        .executableTarget(name: "dgrid-init", path: "Sources/dgrid-init",
                          cSettings: [.unsafeFlags(["-Wall", "-Wextra", "-Werror", "-ffreestanding",
                                                    "-fno-stack-protector", "-fno-builtin", "-Os"])],
                          linkerSettings: [.unsafeFlags(["-static-stdlib", "-Xclang-linker", "-static",
                                                         "-Xclang-linker", "-nostdlib",
                                                         "-Xlinker", "--gc-sections", "-Xlinker", "--strip-all"])]),
        // Sandbox (docs/ARCHITECTURE.md §1) is three targets, so a change to the unpacker
        // neither rebuilds nor retests the spawn path (docs/ARCHITECTURE.md):
        // SandboxSupport (values and file discipline both use), SandboxImages
        // (store, unpacker) and SandboxIsolation (spawn path, cgroups, seccomp).
        // Neither of the last two imports the other; `Sandbox` re-exports all three.
        .target(name: "SandboxSupport",
                dependencies: ["CShims", "CNettle"],
                path: "Sources/Sandbox/Support",
                linkerSettings: [.unsafeFlags(["-Xlinker", "-l:libnettle.a"])]),
        .target(name: "SandboxImages",
                dependencies: [
                    "SandboxSupport", "CShims", "CArchive", "CNettle",
                    .product(name: "Logging", package: "swift-log"),
                ],
                path: "Sources/Sandbox/Image",
                linkerSettings: [
                    .unsafeFlags(["-Xlinker", "-l:libarchive.a", "-Xlinker", "-l:libzstd.a", "-Xlinker", "-l:libz.a"]),
                ]),
        .target(name: "SandboxIsolation",
                dependencies: [
                    "SandboxSupport", "CShims", "CSeccomp", "CCap",
                    .product(name: "Logging", package: "swift-log"),
                ],
                path: "Sources/Sandbox",
                sources: ["Isolation", "Cgroups", "Seccomp", "Network"],
                // The default seccomp profile is compiled into the binary, so a
                // sandbox never depends on finding profiles/ at run time.
                resources: [.embedInCode("Resources/default-seccomp.json")],
                linkerSettings: [
                    .unsafeFlags(["-Xlinker", "-l:libseccomp.a", "-Xlinker", "-l:libcap.a"]),
                ]),
        // The one module the CLI and Runner import: re-exports the three above.
        .target(name: "Sandbox",
                dependencies: ["SandboxSupport", "SandboxImages", "SandboxIsolation"],
                path: "Sources/Sandbox/Exports"),
        // Signatures (docs/ARCHITECTURE.md §9): OpenSSH's SSHSIG, verified in-process
        // with nettle's Ed25519 (libhogweed, over GMP), no ssh-keygen at run time.
        // Linked statically like nettle; only what calls it (dgrid-grid) links it.
        .target(name: "CSignatureMath", path: "Sources/CShims/SignatureMath",
                cSettings: [.unsafeFlags(["-Wall", "-Wextra", "-Werror"])]),
        .target(name: "Trust", dependencies: ["CNettle", "CSignatureMath", "SandboxSupport"], path: "Sources/Trust",
                linkerSettings: [.unsafeFlags(["-Xlinker", "-l:libhogweed.a", "-Xlinker", "-l:libgmp.a"])]),
        // libgit2's TCP stream with TCP_NODELAY and timeouts (see git_stream.c).
        .target(name: "CGitStream", dependencies: ["CGit2"], path: "Sources/CShims/GitStream",
                cSettings: [.unsafeFlags(["-Wall", "-Wextra", "-Werror"])]),
        .target(name: "Runner",
                dependencies: [
                    // libgit2, linked only into `dgrid-grid`: in `dgrid` its ~20 shared
                    // libraries would cost every sandbox start ~3 ms of loading.
                    // CArchive: archive bundles (docs/ARCHITECTURE.md §10), with the libarchive SandboxImages links.
                    "Sandbox", "Trust", "CGit2", "CGitStream", "CZlib", "CNettle", "CArchive",
                    .product(name: "Logging", package: "swift-log"),
                    .product(name: "TOMLKit", package: "TOMLKit"),
                    .product(name: "CoreMetrics", package: "swift-metrics"),
                ]),
        // The registry client (DESIGN §5, Image): async-http-client and NIO. A
        // separate target so only `dgrid-registry` links it; in `dgrid` it cost
        // every sandbox start ~1 ms and 60 MB of binary.
        .target(name: "Registry",
                dependencies: [
                    "SandboxSupport", "SandboxImages",
                    .product(name: "AsyncHTTPClient", package: "async-http-client"),
                ],
                path: "Sources/Sandbox/Registry"),
        // The command tree and its printing, shared by both executables.
        .target(name: "DGridCLI",
                dependencies: [
                    "Sandbox",
                    .product(name: "ArgumentParser", package: "swift-argument-parser"),
                    .product(name: "Logging", package: "swift-log"),
                ]),
        // `dgrid`: the sandbox and the local image verbs, kept lean because
        // `dgrid sandbox run` start latency is a goal; it execs `dgrid-grid`
        // (installed beside it) for the verbs that talk to registries and Git.
        // A static executable: no dynamic loader, no libstdc++.so to map and
        // relocate, fewer mappings for pid 1's clone to copy; 2 ms off every
        // `sandbox run` here (bench/sandbox-start.sh). Users resolve through
        // /etc/passwd only (glibc's built-in "files"; no NSS modules load).
        // Release only, as `make release` builds it (--static-swift-stdlib);
        // debug builds, which the tests run, link as before.
        .executableTarget(name: "dgrid",
                          dependencies: ["DGridCLI"],
                          linkerSettings: leanLinking + [.unsafeFlags(["-static-executable"], .when(configuration: .release))]),
        // `dgrid-grid`: the grid verbs (libgit2). No HTTP stack: a worker runs
        // for days, and NIO's code cost its idle RSS for nothing.
        .executableTarget(name: "dgrid-grid",
                          dependencies: [
                              "DGridCLI", "Runner", "Trust",
                              .product(name: "ArgumentParser", package: "swift-argument-parser"),
                              .product(name: "Logging", package: "swift-log"),
                              // The exposition of the worker's metrics and of `dgrid metrics --prometheus`.
                              .product(name: "Prometheus", package: "swift-prometheus"),
                          ],
                          linkerSettings: leanLinking),
        // `dgrid-registry`: `image pull` and `image allow REGISTRY/NAME:TAG`.
        .executableTarget(name: "dgrid-registry",
                          dependencies: [
                              "DGridCLI", "Registry",
                              .product(name: "ArgumentParser", package: "swift-argument-parser"),
                          ],
                          linkerSettings: leanLinking),
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        // One test target per module, so a change to the unpacker rebuilds and
        // retests ImageTests only (docs/ARCHITECTURE.md, "Tests").
        .testTarget(name: "ImageTests", dependencies: ["SandboxImages", "SandboxSupport", "Registry", "TestSupport"]),
        .testTarget(name: "IsolationTests",
                    dependencies: ["SandboxIsolation", "SandboxSupport", "CShims", "CSeccomp", "TestSupport"]),
        // What needs both halves: the state directory they share.
        .testTarget(name: "SandboxTests", dependencies: ["Sandbox", "TestSupport"]),
        .testTarget(name: "RunnerTests", dependencies: ["Runner", "Trust", "CGitStream", "TestSupport",
                                                      .product(name: "Prometheus", package: "swift-prometheus")]),
        .testTarget(name: "CLITests", dependencies: ["TestSupport", "DGridCLI", .product(name: "ArgumentParser", package: "swift-argument-parser")]),
    ]
)
