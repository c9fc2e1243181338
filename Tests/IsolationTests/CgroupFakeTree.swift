import Foundation
import Glibc
import Synchronization
import TestSupport
@testable import SandboxIsolation
@testable import SandboxSupport

/// A temp directory that looks enough like cgroupfs for the drivers (youki-style
/// tests): mkdir fills a new group with control files, `cgroup.procs` appends,
/// `cgroup.subtree_control` applies +/-, `cgroup.kill` and SIGKILL empty groups,
/// rmdir works over the control files. Every write and signal is logged, and no
/// signal ever reaches a real process.
final class FakeCgroupTree: CgroupFilesystem {
    struct Write: Equatable, CustomStringConvertible {
        /// Relative to the tree's root.
        let file: String
        let value: String
        var description: String { "\(file) <- \(value)" }
    }

    let root: String
    /// Hierarchy directory (relative) → the control files a new group there gets.
    private let templates: [String: [String: String]]
    private let real = KernelCgroupFilesystem()
    private let state = Mutex(State())

    private struct State {
        var writes: [Write] = []
        var kills: [pid_t] = []
        var readOnly = false
        /// Relative file → errno for its next write (then forgotten).
        var failNextWrite: [String: Int32] = [:]
    }

    init(templates: [String: [String: String]]) throws {
        var template = Array("/tmp/cgroup-fake-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw CocoaError(.fileWriteUnknown) }
        root = String(cString: made)
        self.templates = templates
    }

    deinit {
        try? FileManager.default.removeItem(atPath: root)
    }

    func path(_ relative: String) -> String { root + "/" + relative }

    var writes: [Write] { state.withLock { $0.writes } }
    var kills: [pid_t] { state.withLock { $0.kills } }
    func clearLog() { state.withLock { $0.writes = []; $0.kills = [] } }
    func setReadOnly(_ value: Bool) { state.withLock { $0.readOnly = value } }
    func failNextWrite(to relative: String, errno: Int32) { state.withLock { $0.failNextWrite[relative] = errno } }

    /// Creates `relative` and its parents as groups, each with its template's files.
    func makeGroups(_ relative: String) throws {
        var current = root
        for part in relative.split(separator: "/") {
            current += "/" + part
            if !FileManager.default.fileExists(atPath: current) { try makeDirectory(current) }
        }
    }

    func setFile(_ relative: String, _ content: String) {
        _ = FileManager.default.createFile(atPath: path(relative), contents: Data(content.utf8))
    }

    func contents(_ relative: String) -> String? { real.read(path(relative)) }

    // MARK: CgroupFilesystem

    func makeDirectory(_ path: String) throws(CgroupErrno) {
        try real.makeDirectory(path)
        for (name, content) in template(for: path) {
            _ = FileManager.default.createFile(atPath: path + "/" + name, contents: Data(content.utf8))
        }
    }

    func removeDirectory(_ path: String) throws(CgroupErrno) {
        guard real.exists(path) else { throw CgroupErrno(code: ENOENT) }
        // The kernel refuses while child groups or tasks remain.
        if !real.subdirectories(of: path).isEmpty || !CgroupText.pids(real.read(path + "/cgroup.procs")).isEmpty {
            throw CgroupErrno(code: EBUSY)
        }
        do {
            try FileManager.default.removeItem(atPath: path)
        } catch {
            throw CgroupErrno(code: EIO)
        }
    }

    func write(_ value: String, to path: String) throws(CgroupErrno) {
        let relative = String(path.dropFirst(root.count + 1))
        let injected: Int32? = state.withLock { state in
            state.writes.append(Write(file: relative, value: value))
            if state.readOnly { return EACCES }
            return state.failNextWrite.removeValue(forKey: relative)
        }
        if let injected { throw CgroupErrno(code: injected) }
        guard real.exists(path) else { throw CgroupErrno(code: ENOENT) }
        let dir = String(path[..<(path.lastIndex(of: "/") ?? path.endIndex)])
        switch path.split(separator: "/").last {
        case "cgroup.procs":
            let members = (real.read(path) ?? "") + value + "\n"
            try real.write(members, to: path)
            try updateEvents(dir)
        case "cgroup.kill":
            try real.write("", to: dir + "/cgroup.procs")
            try updateEvents(dir)
        case "cgroup.subtree_control":
            var enabled = CgroupText.words(real.read(path))
            for word in value.split(separator: " ") {
                if word.hasPrefix("+") { enabled.insert(String(word.dropFirst())) }
                if word.hasPrefix("-") { enabled.remove(String(word.dropFirst())) }
            }
            try real.write(enabled.sorted().joined(separator: " "), to: path)
        default:
            try real.write(value, to: path)
        }
    }

    func read(_ path: String) -> String? { real.read(path) }
    func exists(_ path: String) -> Bool { real.exists(path) }
    func isWritable(_ path: String) -> Bool { !state.withLock { $0.readOnly } && real.isWritable(path) }
    func subdirectories(of path: String) -> [String] { real.subdirectories(of: path) }

    func kill(_ pid: pid_t, _ signal: Int32) throws(CgroupErrno) {
        state.withLock { $0.kills.append(pid) }
        guard signal == SIGKILL else { return }
        // The task dies: it leaves every group it was in.
        guard let found = FileManager.default.enumerator(atPath: root) else { return }
        for case let relative as String in found where relative.hasSuffix("cgroup.procs") {
            let file = path(relative)
            let left = CgroupText.pids(real.read(file)).filter { $0 != pid }
            try real.write(left.map { "\($0)\n" }.joined(), to: file)
            try updateEvents(String(file.dropLast("/cgroup.procs".count)))
        }
    }

    // MARK: helpers

    private func updateEvents(_ dir: String) throws(CgroupErrno) {
        let events = dir + "/cgroup.events"
        guard real.exists(events) else { return }
        let populated = CgroupText.pids(real.read(dir + "/cgroup.procs")).isEmpty ? 0 : 1
        try real.write("populated \(populated)\nfrozen 0\n", to: events)
    }

    private func template(for path: String) -> [String: String] {
        let relative = String(path.dropFirst(root.count + 1))
        let match = templates.keys.filter { relative == $0 || relative.hasPrefix($0 + "/") }.max { $0.count < $1.count }
        return match.flatMap { templates[$0] } ?? [:]
    }
}

/// Control files a fresh group has on the kernels we target, per controller.
enum CgroupTemplates {
    static let v1Common = ["cgroup.procs": "", "tasks": "", "notify_on_release": "0", "cgroup.clone_children": "0"]
    static let v1Memory = v1Common.merging([
        "memory.limit_in_bytes": "9223372036854771712",
        "memory.memsw.limit_in_bytes": "9223372036854771712",
        "memory.swappiness": "60",
        "memory.max_usage_in_bytes": "0",
        "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n",
    ]) { a, _ in a }
    static let v1CPU = v1Common.merging([
        "cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "-1", "cpu.shares": "1024",
    ]) { a, _ in a }
    static let v1CPUAcct = v1Common.merging(["cpuacct.usage": "0"]) { a, _ in a }
    static let v1Pids = v1Common.merging(["pids.max": "max", "pids.events": "max 0\n"]) { a, _ in a }
    static let v1Freezer = v1Common.merging(["freezer.state": "THAWED"]) { a, _ in a }

    static let v2 = [
        "cgroup.procs": "", "cgroup.controllers": "cpu memory pids", "cgroup.subtree_control": "",
        "cgroup.events": "populated 0\nfrozen 0\n", "cgroup.kill": "", "cgroup.type": "domain",
        "cpu.stat": "usage_usec 0\nuser_usec 0\nsystem_usec 0\n", "cpu.max": "max 100000",
        "memory.max": "max", "memory.swap.max": "max", "memory.oom.group": "0", "memory.peak": "0",
        "memory.events": "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n",
        "pids.max": "max", "pids.events": "max 0\n",
    ]
}
