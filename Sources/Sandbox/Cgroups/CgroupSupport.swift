import Glibc
import SandboxSupport

/// Readers for the kernel's cgroup file formats, shared by both drivers.
enum CgroupText {
    /// Whitespace-separated words, as in `cgroup.controllers` or `cgroup.subtree_control`.
    static func words(_ text: String?) -> Set<String> {
        guard let text else { return [] }
        return Set(text.split(whereSeparator: \.isWhitespace).map(String.init))
    }

    /// The number after `key` in "key value" lines (`cpu.stat`, `memory.events`,
    /// `pids.events`, `memory.oom_control`, `cgroup.events`).
    static func value(of key: String, in text: String?) -> UInt64? {
        guard let text else { return nil }
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ")
            if parts.count == 2, parts[0] == key { return UInt64(parts[1]) }
        }
        return nil
    }

    /// A file holding one number; nil for "max" or anything unparsable.
    static func number(_ text: String?) -> UInt64? {
        guard let text else { return nil }
        return UInt64(text.trimmingWhitespace())
    }

    /// The pids in `cgroup.procs`. Only positive pids other than our own survive:
    /// a stray 0 or -1 handed to kill(2) would signal our group or every process.
    static func pids(_ text: String?) -> [pid_t] {
        guard let text else { return [] }
        let me = getpid()
        return text.split(separator: "\n").compactMap { pid_t($0) }.filter { $0 > 0 && $0 != me }
    }

    /// Whether `cgroup.procs` lists anyone, this process included.
    static func hasProcesses(_ text: String?) -> Bool {
        text?.contains(where: { $0.isNumber }) ?? false
    }
}

/// Group names become directory names next to kernel control files, so only plain words pass.
enum CgroupName {
    static func validate(_ name: String) throws(CgroupError) {
        let ok = (1...128).contains(name.utf8.count)
            && name.utf8.allSatisfy { byte in
                (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
                    || byte == 0x2D || byte == 0x5F
            }
        if !ok { throw .invalidName(name) }
    }
}

/// Bounded waits: kill and removal must never hang the worker on a stuck group.
enum CgroupWait {
    static let killTimeout: UInt64 = 2_000_000_000

    static func deadline(after nanoseconds: UInt64) -> UInt64 {
        Clock.monotonicNanoseconds() + nanoseconds
    }

    static func passed(_ deadline: UInt64) -> Bool {
        Clock.monotonicNanoseconds() >= deadline
    }

    /// Polls `condition` every 1 ms until it holds (true) or `deadline` passes (false).
    static func until(_ deadline: UInt64, _ condition: () -> Bool) -> Bool {
        while true {
            if condition() { return true }
            if passed(deadline) { return false }
            usleep(1_000)
        }
    }
}

/// Removes a group directory, and first any child groups (a sandbox with a cgroup
/// namespace may have made some); a missing directory counts as removed.
enum CgroupTree {
    static func remove(_ path: String, fs: any CgroupFilesystem, deadline: UInt64) throws(CgroupError) {
        var childrenRemoved = false
        while true {
            do throws(CgroupErrno) {
                try fs.removeDirectory(path)
                return
            } catch {
                if error.code == ENOENT { return }
                guard error.code == EBUSY || error.code == ENOTEMPTY else { throw .remove(path: path, errno: error.code) }
                // Child groups are rare, so they are only looked for once rmdir refuses.
                if !childrenRemoved {
                    childrenRemoved = true
                    let children = fs.subdirectories(of: path)
                    for child in children { try remove(path + "/" + child, fs: fs, deadline: deadline) }
                    if !children.isEmpty { continue }
                }
                // Otherwise the last task is still leaving; it goes within microseconds of SIGKILL.
                if CgroupWait.passed(deadline) { throw .remove(path: path, errno: error.code) }
                usleep(1_000)
            }
        }
    }

    /// mkdir that tolerates an existing directory (a reused name, or `dgrid` made by an earlier run).
    static func ensureDirectory(_ path: String, fs: any CgroupFilesystem) throws(CgroupErrno) {
        do throws(CgroupErrno) {
            try fs.makeDirectory(path)
        } catch {
            if error.code != EEXIST { throw error }
        }
    }
}
