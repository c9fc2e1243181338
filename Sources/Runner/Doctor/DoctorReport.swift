import Sandbox

/// What `dgrid doctor` found (docs/ARCHITECTURE.md §12, "Doctor"): every check
/// in order, and the verdict the worst of them gives. `--json` prints this
/// value; the exit status is `exitStatus`.
public struct DoctorReport: Sendable, Codable, Equatable {
    public let checks: [HostCheck]

    public init(checks: [HostCheck]) {
        self.checks = checks
    }

    /// The worst status found; pass when there is nothing to check.
    public var verdict: HostCheckStatus { checks.map(\.status).max() ?? .pass }

    /// 0 all pass, 1 warnings only, 2 any failure.
    public var exitStatus: Int32 {
        switch verdict {
        case .pass: 0
        case .warn: 1
        case .fail: 2
        }
    }

    public func count(_ status: HostCheckStatus) -> Int { checks.filter { $0.status == status }.count }

    public func check(_ id: HostCheckID) -> HostCheck? { checks.first { $0.id == id } }

    enum CodingKeys: String, CodingKey {
        case checks, verdict, exitStatus = "exit_status", counts
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(checks, forKey: .checks)
        try container.encode(verdict, forKey: .verdict)
        try container.encode(exitStatus, forKey: .exitStatus)
        var counts: [String: Int] = [:]
        for status in HostCheckStatus.allCases { counts[status.rawValue] = count(status) }
        try container.encode(counts, forKey: .counts)
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        checks = try container.decode([HostCheck].self, forKey: .checks)
    }
}
