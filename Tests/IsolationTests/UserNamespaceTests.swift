import Foundation
import Glibc
import Synchronization
import Testing
import TestSupport
@testable import SandboxIsolation
@testable import SandboxSupport

/// docs/THREATS.md T4: a root worker never runs a task on a real host id.
/// Every sandbox has its own user namespace whose ids are a host range leased
/// for that run alone; the image's files keep their owners through idmapped
/// mounts.
@Suite(.system, .serialized, .enabled(if: geteuid() == 0, "the root worker's mapping"))
struct UserNamespaceTests {
    private func uidMap(_ o: Outcome) -> [UInt64] {
        o.stdout.text.split(separator: "\n").first.map { $0.split(separator: " ").compactMap { UInt64($0) } } ?? []
    }

    @Test func aTaskRunsOnAHostRangeNoAccountHas() throws {
        let o = try Fixture.runner.run(try Fixture.shell("cat /proc/self/uid_map; cat /proc/self/gid_map; id -u; stat -c '%u:%g' /bin/busybox"))
        #expect(o.exitCode == 0, "\(o.stderr.text)")
        let lines = o.stdout.text.split(separator: "\n").map { $0.split(separator: " ").joined(separator: " ") }
        let map = uidMap(o)
        #expect(map.count == 3 && map[0] == 0 && map[2] == 65536, "\(lines)")
        let start = map.count == 3 ? map[1] : 0
        #expect(start >= UInt64(HostIDPool.defaultStart), "container root is host uid \(start)")
        // No account of this host owns any id of the range.
        var owned: [UInt64] = []
        setpwent()
        while let entry = getpwent() {
            let uid = UInt64(entry.pointee.pw_uid)
            if uid >= start && uid < start + 65536 { owned.append(uid) }
        }
        endpwent()
        #expect(owned.isEmpty, "host accounts inside the sandbox's range: \(owned)")
        #expect(lines.count == 4 && lines[2] == "1000")
        // The image's root-owned files are root's inside (idmapped), not nobody's.
        #expect(lines.last == "0:0", "\(lines)")
    }

    /// Two sandboxes at once never share a host id, so one cannot signal,
    /// trace or share per-user limits with the other.
    @Test func concurrentSandboxesGetDistinctRanges() throws {
        let starts = Mutex<[UInt64]>([])
        let spec = try Fixture.shell("cat /proc/self/uid_map; sleep 1")
        let done = DispatchSemaphore(value: 0)
        for _ in 0..<3 {
            Thread {
                if let o = try? Fixture.runner.run(spec), case let map = uidMap(o), map.count == 3 {
                    starts.withLock { $0.append(map[1]) }
                }
                done.signal()
            }.start()
        }
        for _ in 0..<3 { done.wait() }
        let seen = starts.withLock { $0 }
        #expect(seen.count == 3 && Set(seen).count == 3, "\(seen)")
    }

    /// Seen from the host, the task's process is not uid 1000 (nor 0): a host
    /// account with that uid has nothing in common with it.
    @Test func theTasksHostUidIsInTheLeasedRange() throws {
        let seconds = "2.\(UInt32.random(in: 100_000...999_999))"
        var sleeper = try Fixture.shell("")
        sleeper.command = ["/bin/sleep", seconds]
        let spec = sleeper
        let done = DispatchSemaphore(value: 0)
        Thread {
            _ = try? Fixture.runner.run(spec)
            done.signal()
        }.start()
        var hostUid: UInt64?
        for _ in 0..<40 where hostUid == nil {
            let r = try Shell.run(["pgrep", "-x", "-f", "/bin/sleep \(seconds)"])
            if let pid = r.stdout.split(separator: "\n").first,
               let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
               let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Uid:") }) {
                hostUid = line.split(whereSeparator: { $0 == "\t" || $0 == " " }).dropFirst().first.flatMap { UInt64($0) }
            }
            if hostUid == nil { usleep(50_000) }
        }
        done.wait()
        let uid = hostUid ?? 0
        #expect(uid >= UInt64(HostIDPool.defaultStart) + 1000, "the task's host uid is \(uid)")
    }
}
