/// Whether a node may claim tasks (docs/ARCHITECTURE.md §7, "Health"), as its
/// node record says: `health` and, when unhealthy, `reason` — one line with
/// what is wrong on that host and the command that fixes it, never a host path.
public enum NodeHealth: Equatable, Sendable {
    case healthy
    case unhealthy(reason: String)

    public var word: String {
        switch self {
        case .healthy: "healthy"
        case .unhealthy: "unhealthy"
        }
    }

    public var reason: String? {
        if case .unhealthy(let reason) = self { return reason }
        return nil
    }

    /// A record without the field is from a worker that knew no health: healthy.
    static func parse(health: String?, reason: String?) -> NodeHealth {
        health == "unhealthy" ? .unhealthy(reason: reason ?? "") : .healthy
    }
}
