import Glibc
import Sandbox

/// `disk.space` and `disk.inodes`: room under `$DGRID_HOME`, where a worker
/// unpacks image layers, keeps the grid's mirror, compiles seccomp filters and
/// spools every running task's whole stdout and stderr (up to `output_size`
/// each, docs/ARCHITECTURE.md §10). Read with statvfs(3) as an unprivileged
/// writer sees it (`f_bavail`, `f_favail`: root's reserve not counted).
/// A plain function, so the worker's periodic self-checks can call it too.
public enum DiskSpaceCheck {
    /// What the filesystem holding a path has left.
    public struct Usage: Sendable, Equatable {
        /// The path statvfs(3) was asked about (the home, or its nearest existing parent).
        public var path: String
        public var freeBytes: UInt64
        public var totalBytes: UInt64
        public var freeInodes: UInt64
        /// 0 on filesystems without an inode limit (btrfs reports none).
        public var totalInodes: UInt64

        public init(path: String, freeBytes: UInt64, totalBytes: UInt64, freeInodes: UInt64, totalInodes: UInt64) {
            self.path = path
            self.freeBytes = freeBytes
            self.totalBytes = totalBytes
            self.freeInodes = freeInodes
            self.totalInodes = totalInodes
        }
    }

    /// The limits, stated (docs/ARCHITECTURE.md §12): below `failBytes` a
    /// worker cannot unpack an image or spool one task's output; below
    /// `warnBytes` it can, but every slot spooling a full `output_size` at once
    /// would not fit. A layer of a Debian image is ~10,000 files, a busybox one
    /// ~400, and each grid fetch adds loose objects: hence the inode limits.
    public struct Thresholds: Sendable, Equatable {
        public var failBytes: UInt64 = 1 << 30
        public var warnBytes: UInt64
        public var failInodes: UInt64 = 10_000
        public var warnInodes: UInt64 = 100_000

        /// `warnBytes` = the larger of 4 GiB and slots × output_size + 1 GiB.
        public init(slots: Int, outputSize: ByteCount) {
            let spool = UInt64(max(1, slots)).multipliedReportingOverflow(by: outputSize.bytes)
            warnBytes = max(4 << 30, spool.overflow ? UInt64.max : spool.partialValue &+ (1 << 30))
        }
    }

    public static func check(home: String, thresholds: Thresholds) -> [HostCheck] {
        switch usage(of: home) {
        case .failure(let failure):
            let why = failure.description
            return [.fail(.diskSpace, why, fix: "set DGRID_HOME to a directory on a mounted filesystem"),
                    .fail(.diskInodes, why, fix: "set DGRID_HOME to a directory on a mounted filesystem")]
        case .success(let usage):
            return [space(usage, thresholds), inodes(usage, thresholds)]
        }
    }

    static func space(_ usage: Usage, _ limits: Thresholds) -> HostCheck {
        let free = "\(size(usage.freeBytes)) free of \(size(usage.totalBytes)) on \(usage.path)"
        if usage.freeBytes < limits.failBytes {
            return .fail(.diskSpace, "\(free), under \(size(limits.failBytes)): a worker cannot unpack an image or spool one task's output",
                         fix: "free space on that filesystem (dgrid image gc removes unused images) or set DGRID_HOME on a larger one")
        }
        if usage.freeBytes < limits.warnBytes {
            return .warn(.diskSpace, "\(free), under \(size(limits.warnBytes)) (the larger of 4 GiB and slots × output_size + 1 GiB)",
                         fix: "free space (dgrid image gc), lower output_size or slots, or set DGRID_HOME on a larger filesystem")
        }
        return .pass(.diskSpace, "\(free) (warn under \(size(limits.warnBytes)), fail under \(size(limits.failBytes)))")
    }

    static func inodes(_ usage: Usage, _ limits: Thresholds) -> HostCheck {
        guard usage.totalInodes > 0 else {
            return .pass(.diskInodes, "the filesystem of \(usage.path) has no inode limit")
        }
        let free = "\(usage.freeInodes) inodes free of \(usage.totalInodes) on \(usage.path)"
        if usage.freeInodes < limits.failInodes {
            return .fail(.diskInodes, "\(free), under \(limits.failInodes): unpacking one image layer can use them all",
                         fix: "remove files on that filesystem (dgrid image gc), or set DGRID_HOME on a filesystem with more inodes")
        }
        if usage.freeInodes < limits.warnInodes {
            return .warn(.diskInodes, "\(free), under \(limits.warnInodes)",
                         fix: "remove files on that filesystem (dgrid image gc), or set DGRID_HOME on a filesystem with more inodes")
        }
        return .pass(.diskInodes, "\(free) (warn under \(limits.warnInodes), fail under \(limits.failInodes))")
    }

    /// statvfs(3) of `path`, or of its nearest existing parent when it does not exist yet.
    public struct StatFailure: Error, CustomStringConvertible {
        public let description: String
    }

    public static func usage(of path: String) -> Result<Usage, StatFailure> {
        var probe = path
        while true {
            var info = statvfs()
            if statvfs(probe, &info) == 0 {
                let block = UInt64(info.f_frsize)
                return .success(Usage(path: probe, freeBytes: UInt64(info.f_bavail) &* block, totalBytes: UInt64(info.f_blocks) &* block,
                                      freeInodes: UInt64(info.f_favail), totalInodes: UInt64(info.f_files)))
            }
            let code = errno
            guard code == ENOENT, let slash = probe.lastIndex(of: "/"), probe != "/" else {
                return .failure(StatFailure(description: "statvfs \(probe): \(errnoText(code))"))
            }
            probe = slash == probe.startIndex ? "/" : String(probe[..<slash])
        }
    }

    static func size(_ bytes: UInt64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
        var value = Double(bytes), unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        guard unit > 0 else { return "\(bytes) B" }
        let tenths = Int((value * 10).rounded())
        return "\(tenths / 10)" + (tenths % 10 == 0 ? "" : ".\(tenths % 10)") + " " + units[unit]
    }
}
