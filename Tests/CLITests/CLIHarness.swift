import Foundation
import Synchronization

/// Drives the built `dgrid` binary end to end, as a user would.
enum CLI {
    static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// `DGRID_BIN` when set (the Makefile sets it), else the debug build.
    static var binary: String {
        ProcessInfo.processInfo.environment["DGRID_BIN"] ?? packageRoot.appendingPathComponent(".build/debug/dgrid").path
    }

    struct Result {
        let status: Int32
        let stdout: String
        let stderr: String
    }

    /// Runs dgrid; `environment` entries are added to (or replace) this process's.
    static func run(_ args: [String], as user: (uid: UInt32, gid: UInt32)? = nil,
                    environment: [String: String] = [:]) throws -> Result {
        var argv = [binary] + args
        if let user {
            argv = ["/usr/bin/setpriv", "--reuid=\(user.uid)", "--regid=\(user.gid)", "--clear-groups", "--"] + argv
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: argv[0])
        process.arguments = Array(argv.dropFirst())
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let errData = Mutex<Data>(Data())
        let errDone = DispatchSemaphore(value: 0)
        Thread {
            let data = err.fileHandleForReading.readDataToEndOfFile()
            errData.withLock { $0 = data }
            errDone.signal()
        }.start()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        errDone.wait()
        process.waitUntilExit()
        return Result(status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                      stderr: errData.withLock { String(decoding: $0, as: UTF8.self) })
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
