import Foundation
import TestSupport

/// Drives the built `dgrid` binary end to end, as a user would.
enum CLI {
    static let packageRoot = TestSupport.packageRoot

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

    /// The busybox rootfs every test target shares (TestSupport's TestRootfs):
    /// built once, readable by everyone.
    static func rootfs() throws -> String { try TestRootfs.shared() }
}
