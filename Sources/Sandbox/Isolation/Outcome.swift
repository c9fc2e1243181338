import SandboxSupport
/// What happened to one sandboxed command. `exitCode` follows `sandbox run`'s
/// contract: the task's code, 124 on timeout, 128+N when killed by signal N.
public struct Outcome: Sendable, Equatable {
    public var exitCode: Int32
    public var signal: Int32?
    public var timedOut: Bool
    public var oomKilled: Bool
    public var pidsLimitHit: Bool
    public var durationMs: UInt64
    public var cpuMs: UInt64?
    public var maxRssBytes: UInt64?
    public var stdout: CapturedOutput
    public var stderr: CapturedOutput
    /// Limits that were asked for but could not be enforced (rootless without cgroups).
    public var unenforcedLimits: [String]
    /// Set when the image's root was not the usual overlay of shared layers:
    /// "overlay refused (<why>): ran from a copy of N layers". nil otherwise.
    public var rootfsNote: String?

    public init(exitCode: Int32, signal: Int32? = nil, timedOut: Bool = false, oomKilled: Bool = false,
                pidsLimitHit: Bool = false, durationMs: UInt64 = 0, cpuMs: UInt64? = nil, maxRssBytes: UInt64? = nil,
                stdout: CapturedOutput = CapturedOutput(), stderr: CapturedOutput = CapturedOutput(),
                unenforcedLimits: [String] = [], rootfsNote: String? = nil) {
        self.exitCode = exitCode
        self.signal = signal
        self.timedOut = timedOut
        self.oomKilled = oomKilled
        self.pidsLimitHit = pidsLimitHit
        self.durationMs = durationMs
        self.cpuMs = cpuMs
        self.maxRssBytes = maxRssBytes
        self.stdout = stdout
        self.stderr = stderr
        self.unenforcedLimits = unenforcedLimits
        self.rootfsNote = rootfsNote
    }
}

/// The first `limit` bytes of a stream, and how many bytes it had in all.
public struct CapturedOutput: Sendable, Equatable {
    public var bytes: [UInt8]
    public var totalBytes: UInt64
    public var truncated: Bool { totalBytes > UInt64(bytes.count) }

    public init(bytes: [UInt8] = [], totalBytes: UInt64 = 0) {
        self.bytes = bytes
        self.totalBytes = totalBytes
    }

    /// The kept bytes as text; invalid UTF-8 is replaced, never dropped silently.
    public var text: String { String(decoding: bytes, as: UTF8.self) }
}
