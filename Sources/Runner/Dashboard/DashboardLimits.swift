/// How much of the grid the dashboard shows (docs/ARCHITECTURE.md §12,
/// docs/THREATS.md T26): every list has a row cap and every untrusted value a
/// scalar cap, so a grid of any size, holding anything a repository writer
/// pushed, makes a page of bounded size (`pageBound`). Each section says how
/// many more there are and which command lists them all.
public struct DashboardLimits: Sendable, Codable, Equatable {
    /// Queued tasks listed, in claim order (every priority's count is shown).
    public var queuedRows = 20
    public var runningRows = 100
    /// Recent completions, and recent failures (failed, skipped, rejected): each.
    public var finishedRows = 25
    /// The last bytes of stdout and of stderr shown for each finished task.
    public var excerptBytes = 2_048
    public var nodeRows = 100
    public var principalRows = 50
    public var auditRows = 50
    /// Queue files no worker can read, listed with why.
    public var unplacedRows = 20
    /// Boxes in the dependency graph (tasks and summary boxes).
    public var graphNodes = 150
    /// More tasks than this hanging off one task (or sharing the same
    /// dependencies and dependents) are drawn as one summary box.
    public var graphFanOut = 8
    public var graphEdges = 1_000
    /// Scalars of an id (task, node, principal) and of any other short value (a time, a status, progress).
    public var idScalars = 80
    /// Scalars of a reason (a node's health, an audit event, why a file was set aside).
    public var reasonScalars = 240

    public init() {}

    public static let standard = DashboardLimits()

    enum CodingKeys: String, CodingKey {
        case queuedRows = "queued_rows", runningRows = "running_rows", finishedRows = "finished_rows"
        case excerptBytes = "excerpt_bytes", nodeRows = "node_rows", principalRows = "principal_rows"
        case auditRows = "audit_rows", unplacedRows = "unplaced_rows", graphNodes = "graph_nodes"
        case graphFanOut = "graph_fan_out", graphEdges = "graph_edges", idScalars = "id_scalars", reasonScalars = "reason_scalars"
    }

    /// An upper bound of `index.html`'s size in bytes, whatever the grid holds:
    /// each row's untrusted values at their caps, every scalar at its widest
    /// (`HTMLText.maxBytesPerScalar`), plus a generous allowance for the row's
    /// own markup. The hostile-input test checks a built site against it.
    public var pageBound: Int {
        let id = field(idScalars), reason = field(reasonScalars)
        let markup = 1_024
        let queue = queuedRows * (2 * id + markup) + TaskPriority.allCases.count * markup
        // Task, node, principal, lease, progress, plus the attempt's numbers.
        let running = runningRows * (5 * id + markup)
        // Task, node, status, time, the task again in each stream's caption, and both streams' excerpts.
        let finished = 2 * finishedRows * (6 * id + 2 * (excerptBytes * HTMLText.maxBytesPerScalar + markup) + markup)
        // Node, status, heartbeat, health word, and the reason; the circuit's word and a reputation are dgrid's own few bytes.
        let nodes = nodeRows * (4 * id + reason + markup + 128)
        let principals = principalRows * (2 * id + reason + markup)
        // Time, event, task, node, up to four principals, and the reason.
        let audit = auditRows * (8 * id + reason + markup)
        let unplaced = unplacedRows * (id + 2 * reason + markup)
        // Each box: its label (an id's first scalars), its title (the whole id, its state) and its markup; each edge a path.
        let graph = graphNodes * (2 * id + 2 * markup) + graphEdges * 256
        let fixed = 64 * 1_024
        return fixed + queue + running + finished + nodes + principals + audit + unplaced + graph
    }

    private func field(_ scalars: Int) -> Int { scalars * HTMLText.maxBytesPerScalar + 3 }
}
