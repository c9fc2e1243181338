import Foundation
import Synchronization

/// The package's root directory, for scripts and probe sources the tests build.
public let packageRoot = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

public enum TempDir {
    /// A fresh directory, world-readable so a rootless test user can traverse it.
    public static func make(prefix: String) throws -> URL {
        let url = URL(fileURLWithPath: NSTemporaryDirectory())
            .appendingPathComponent("\(prefix)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o755])
        // Removed at exit at the latest, whether or not the test removes it.
        TestCleanup.removeAtExit(url.path)
        return url
    }
}

public struct ShellError: Error, CustomStringConvertible {
    public let description: String
    public init(description: String) { self.description = description }
}

public enum Shell {
    public typealias Result = ProcessResult

    @discardableResult
    public static func run(_ args: [String]) throws -> Result {
        let absolute = args[0].hasPrefix("/")
        return try ProcessRunner.run(absolute ? args[0] : "/usr/bin/env", absolute ? Array(args.dropFirst()) : args)
    }

    public static func check(_ args: [String]) throws {
        let r = try run(args)
        guard r.status == 0 else {
            throw ShellError(description: "\(args.joined(separator: " ")) exited \(r.status): \(r.stderr)")
        }
    }
}

/// The host's mount table, to prove a run left it unchanged.
public enum HostMounts {
    public static func snapshot() throws -> [String] {
        try String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)
            .split(separator: "\n").map { line in
                // Drop the mount id and parent id, which are not stable across remounts.
                line.split(separator: " ").dropFirst(2).joined(separator: " ")
            }.sorted()
    }
}

/// Shared, built-once test material: a busybox rootfs with static C probes in
/// /probes (from Tests/probes). Needs no part of dgrid, so every test target
/// (images, isolation, CLI) can use the same one.
public enum TestRootfs {
    private static let built = Mutex<String?>(nil)

    /// The shared read-only rootfs. Tests that need to change a rootfs copy it first.
    public static func shared() throws -> String {
        try built.withLock { cached in
            if let cached { return cached }
            let dir = try TempDir.make(prefix: "dgrid-test-rootfs").path
            try Shell.check([packageRoot.appendingPathComponent("scripts/busybox-rootfs.sh").path, dir])
            try FileManager.default.createDirectory(atPath: dir + "/probes", withIntermediateDirectories: true)
            for probe in ["syscalls", "fds", "cpuburn", "memhog", "ptracer", "flood", "deeptree"] {
                let source = packageRoot.appendingPathComponent("Tests/probes/\(probe).c").path
                try Shell.check(["cc", "-static", "-O2", "-pthread", "-o", "\(dir)/probes/\(probe)", source])
            }
            cached = dir
            return dir
        }
    }

    /// A private copy of the rootfs that a test may damage.
    public static func copy() throws -> String {
        let dir = try TempDir.make(prefix: "dgrid-test-copy").path + "/rootfs"
        try Shell.check(["cp", "-a", try shared(), dir])
        return dir
    }
}
