import Foundation
import Synchronization
import TestSupport

/// Drives the built `dgrid` binary end to end, as a user would.
enum CLI {
    static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// `DGRID_BIN` when set (the Makefile sets it), else the debug build.
    static var binary: String {
        ProcessInfo.processInfo.environment["DGRID_BIN"] ?? packageRoot.appendingPathComponent(".build/debug/dgrid").path
    }

    typealias Result = ProcessResult

    /// Runs dgrid; `environment` entries are added to (or replace) this process's.
    static func run(_ args: [String], as user: (uid: UInt32, gid: UInt32)? = nil,
                    environment: [String: String] = [:]) throws -> Result {
        var argv = [binary] + args
        if let user {
            argv = ["/usr/bin/setpriv", "--reuid=\(user.uid)", "--regid=\(user.gid)", "--clear-groups", "--"] + argv
        }
        return try ProcessRunner.run(argv[0], Array(argv.dropFirst()), environment: environment)
    }

    private static let rootfsPath = Mutex<String?>(nil)

    /// A busybox rootfs built once by the project's script, readable by everyone.
    static func rootfs() throws -> String {
        try rootfsPath.withLock { cached in
            if let cached { return cached }
            let dir = NSTemporaryDirectory() + "dgrid-cli-rootfs-\(UUID().uuidString.prefix(8))"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o755])
            let build = Process()
            build.executableURL = packageRoot.appendingPathComponent("scripts/busybox-rootfs.sh")
            build.arguments = [dir]
            try build.run()
            build.waitUntilExit()
            guard build.terminationStatus == 0 else { throw CocoaError(.fileWriteUnknown) }
            cached = dir
            return dir
        }
    }
}
