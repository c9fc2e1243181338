import FoundationEssentials
import Glibc
import Sandbox

/// The outcome record `sandbox run --json` prints (docs/ARCHITECTURE.md §8).
struct OutcomeRecord: Encodable {
    let exit_code: Int32
    let signal: Int32?
    let timed_out: Bool
    let oom_killed: Bool
    let pids_limit_hit: Bool
    let duration_ms: UInt64
    let cpu_ms: UInt64?
    let max_rss_bytes: UInt64?
    let stdout: String
    let stderr: String
    let stdout_bytes: UInt64
    let stderr_bytes: UInt64
    let stdout_truncated: Bool
    let stderr_truncated: Bool
    let unenforced_limits: [String]
    /// Why the image ran from a copy instead of an overlay; null when it did not.
    let rootfs_note: String?

    private enum CodingKeys: String, CodingKey {
        case exit_code, signal, timed_out, oom_killed, pids_limit_hit, duration_ms, cpu_ms, max_rss_bytes
        case stdout, stderr, stdout_bytes, stderr_bytes, stdout_truncated, stderr_truncated, unenforced_limits
        case rootfs_note
    }

    /// Every key is always present; unknown values are `null`, never missing.
    func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(exit_code, forKey: .exit_code)
        try c.encode(signal, forKey: .signal)
        try c.encode(timed_out, forKey: .timed_out)
        try c.encode(oom_killed, forKey: .oom_killed)
        try c.encode(pids_limit_hit, forKey: .pids_limit_hit)
        try c.encode(duration_ms, forKey: .duration_ms)
        try c.encode(cpu_ms, forKey: .cpu_ms)
        try c.encode(max_rss_bytes, forKey: .max_rss_bytes)
        try c.encode(stdout, forKey: .stdout)
        try c.encode(stderr, forKey: .stderr)
        try c.encode(stdout_bytes, forKey: .stdout_bytes)
        try c.encode(stderr_bytes, forKey: .stderr_bytes)
        try c.encode(stdout_truncated, forKey: .stdout_truncated)
        try c.encode(stderr_truncated, forKey: .stderr_truncated)
        try c.encode(unenforced_limits, forKey: .unenforced_limits)
        try c.encode(rootfs_note, forKey: .rootfs_note)
    }

    init(_ o: Outcome) {
        exit_code = o.exitCode
        signal = o.signal
        timed_out = o.timedOut
        oom_killed = o.oomKilled
        pids_limit_hit = o.pidsLimitHit
        duration_ms = o.durationMs
        cpu_ms = o.cpuMs
        max_rss_bytes = o.maxRssBytes
        stdout = o.stdout.text
        stderr = o.stderr.text
        stdout_bytes = o.stdout.totalBytes
        stderr_bytes = o.stderr.totalBytes
        stdout_truncated = o.stdout.truncated
        stderr_truncated = o.stderr.truncated
        unenforced_limits = o.unenforcedLimits
        rootfs_note = o.rootfsNote
    }
}

enum OutcomeJSON {
    static func render(_ outcome: Outcome) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        guard let data = try? encoder.encode(OutcomeRecord(outcome)) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }
}

/// Lines for stderr that tell the user what the exit code alone does not.
enum OutcomeNotes {
    static func lines(_ o: Outcome) -> [String] {
        var notes: [String] = []
        if o.timedOut { notes.append("timed out; the whole process tree was killed") }
        if o.oomKilled { notes.append("out of memory: killed by the memory limit") }
        if o.pidsLimitHit { notes.append("the pids limit refused at least one fork") }
        if o.stdout.truncated { notes.append("stdout truncated: kept \(o.stdout.bytes.count) of \(o.stdout.totalBytes) bytes") }
        if o.stderr.truncated { notes.append("stderr truncated: kept \(o.stderr.bytes.count) of \(o.stderr.totalBytes) bytes") }
        if !o.unenforcedLimits.isEmpty {
            notes.append("not enforced (no cgroup): \(o.unenforcedLimits.joined(separator: ", "))")
        }
        if let note = o.rootfsNote { notes.append(note) }
        return notes
    }
}

package enum FileDescriptorWriter {
    package static func write(_ bytes: [UInt8], to fd: Int32) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return }
            offset += n
        }
    }
}
