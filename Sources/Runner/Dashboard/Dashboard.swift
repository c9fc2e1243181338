import Foundation

/// What `dgrid dashboard` shows (docs/ARCHITECTURE.md §12), read from one
/// listing of the grid by `DashboardReader`, drawn by `DashboardPage`. Every
/// list is already cut to its `DashboardLimits`; `numbers` counts what was
/// cut from, and is what `dashboard.json` holds.
public struct Dashboard: Sendable {
    public var numbers: DashboardNumbers
    public let limits: DashboardLimits
    let generatedAt: Date
    /// The next queued tasks a worker would claim, in claim order.
    let queueHead: [QueueCandidate]
    let unplaced: [UnplacedFile]
    /// Claims: held (running, or past their lease) and given back.
    let running: [GridStatus.Running]
    let completions: [FinishedTask]
    let failures: [FinishedTask]
    let nodes: [NodeRow]
    let quotas: QuotaView
    let audit: AuditView
    let graph: DependencyGraphLayout
    /// How long a node may be silent before it is shown as stale: three of this host's heartbeat intervals.
    let staleAfterSeconds: Double

    /// A finished task as the listing has it, with the end of its output when its record could be read.
    struct FinishedTask: Sendable {
        let item: ResultListing.Item
        let output: OutputExcerpt?
        /// Why there is no output to show (archived, a record too large to read).
        let note: String?
    }

    /// The last `DashboardLimits.excerptBytes` of each stream as the record keeps it.
    struct OutputExcerpt: Sendable {
        let stdout: String, stderr: String
        /// Bytes the task wrote to each stream, and whether the record itself kept less.
        let stdoutBytes: UInt64, stderrBytes: UInt64
        let stdoutTruncated: Bool, stderrTruncated: Bool
        /// Whether the excerpt is shorter than what the record kept.
        let stdoutCut: Bool, stderrCut: Bool
        let durationMs: Int64
        let timedOut: Bool, oomKilled: Bool
    }

    struct NodeRow: Sendable {
        let summary: GridStatus.NodeSummary
        /// Seconds since its last heartbeat at `generatedAt`; nil when the time does not parse.
        let silentSeconds: Double?
    }

    enum QuotaView: Sendable {
        case report(GridQuota.Report)
        /// This host's trust files could not be read: why.
        case unavailable(String)
    }

    enum AuditView: Sendable {
        /// Newest first.
        case events([AuditEvent])
        case omitted
    }
}

/// The numbers the page shows, as `dashboard.json` (docs/ARCHITECTURE.md §12):
/// what a test or a script compares, without reading HTML.
public struct DashboardNumbers: Sendable, Codable, Equatable {
    public var generatedAt = ""
    public var gridID: String?
    public var main: String?
    /// Queued tasks on main, and per priority (critical, high, normal, low).
    public var queued = 0
    public var queuedByPriority: [String: Int] = [:]
    /// Queued tasks a worker may claim now (dependencies done, no claim).
    public var claimable = 0
    /// Claims held within their lease; held past it (a takeover is due); given back.
    public var running = 0, leaseLapsed = 0, released = 0
    /// `tasks/in_progress/` on main, as of the last fold (D-GRID's count).
    public var inProgress = 0
    /// Folded, archived ones included.
    public var completed = 0, failed = 0, rejected = 0
    public var archived = 0
    /// Results published and not folded yet.
    public var unfoldedResults = 0
    public var unplaceable = 0, setAside = 0
    public var nodes = 0, nodesUnhealthy = 0, nodesStale = 0, slots = 0
    /// Nodes whose record says their Git circuit is open or half-open.
    public var nodesCircuitOpen = 0
    /// Principals with use or limits; nil when this host's trust files could not be read.
    public var principals: Int?
    /// Audit events shown; nil when left out (`--no-audit`).
    public var auditEvents: Int?
    public var graph = GraphNumbers()
    /// Rows each section lists (the rest are counted above).
    public var shown = Shown()
    public var limits = DashboardLimits.standard
    /// index.html's size, and the most it could be under `limits`.
    public var pageBytes = 0, pageBound = 0

    public init() {}

    public struct GraphNumbers: Sendable, Codable, Equatable {
        /// Tasks in the dependency graph, by state.
        public var tasks = 0
        public var byState: [String: Int] = [:]
        /// Boxes drawn: one per task, or one for many (`summaryBoxes`, holding `summarizedTasks`).
        public var boxes = 0, summaryBoxes = 0, summarizedTasks = 0
        public var edges = 0, edgesDrawn = 0

        enum CodingKeys: String, CodingKey {
            case tasks, byState = "by_state", boxes, summaryBoxes = "summary_boxes", summarizedTasks = "summarized_tasks"
            case edges, edgesDrawn = "edges_drawn"
        }
    }

    public struct Shown: Sendable, Codable, Equatable {
        public var queue = 0, running = 0, completions = 0, failures = 0, nodes = 0, principals = 0, audit = 0, unplaced = 0
    }

    enum CodingKeys: String, CodingKey {
        case generatedAt = "generated_at", gridID = "grid_id", main, queued, queuedByPriority = "queued_by_priority", claimable
        case running, leaseLapsed = "lease_lapsed", released, inProgress = "in_progress", completed, failed, rejected, archived
        case unfoldedResults = "unfolded_results", unplaceable, setAside = "set_aside"
        case nodes, nodesUnhealthy = "nodes_unhealthy", nodesStale = "nodes_stale", slots, principals
        case nodesCircuitOpen = "nodes_git_circuit_open"
        case auditEvents = "audit_events", graph, shown, limits, pageBytes = "page_bytes", pageBound = "page_bound"
    }
}
