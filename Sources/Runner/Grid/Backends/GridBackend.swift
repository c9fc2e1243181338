import Foundation
import Synchronization

/// One Git server of a grid as this process reaches it (docs/ARCHITECTURE.md §11, "Several
/// backends"): its ledgers — the slots', the heartbeat's and the checkpoints', all on the one
/// mirror every backend shares, so objects fetched from one are there when another is used —
/// and its circuit breaker, which is its health.
final class GridBackend: @unchecked Sendable {
    /// 0 for `--repo`'s first, the primary; then the backups in order.
    let index: Int
    let repository: String
    let ledger: GitLedger
    let heartbeatLedger: SideLedger
    let checkpointLedger: SideLedger
    let circuit: GitCircuitBreaker

    init(index: Int, repository: String, credentials: GitCredentials, settings: GridSettings, mirror: String) throws(GridError) {
        self.index = index
        self.repository = repository
        let circuit = GitCircuitBreaker(threshold: settings.circuitFailures, ceilingSeconds: settings.circuitCeilingSeconds)
        self.circuit = circuit
        let open = { () throws(GridError) -> GitLedger in
            try Self.openLedger(repository, credentials: credentials, settings: settings, mirror: mirror, circuit: circuit)
        }
        // With a backup to move to, the slots' and the heartbeat's connections may not stay silent
        // past `backendAnswerSeconds`; the checkpoints' (large uploads a proxy in front of the
        // server may hold without a word until they are in) keep only the deadlines.
        let answer = settings.backups.isEmpty ? 0 : settings.backendAnswerSeconds
        let answering = { () throws(GridError) -> GitLedger in
            let opened = try open()
            opened.answerSeconds = answer
            return opened
        }
        ledger = try answering()
        heartbeatLedger = SideLedger(answering)
        checkpointLedger = SideLedger(open)
    }

    /// Every ledger of a backend uses the one mirror: what one writes (a claim commit, a
    /// renewal) the other reads, as two processes sharing a mirror would.
    private static func openLedger(_ repository: String, credentials: GitCredentials, settings: GridSettings, mirror: String,
                                   circuit: GitCircuitBreaker) throws(GridError) -> GitLedger {
        do {
            let ledger = try GitLedger(remote: repository, mirrorPath: mirror, credentials: credentials,
                                       knownHosts: settings.knownHostsPath.map { SSHKnownHosts(path: $0) },
                                       deadlines: settings.gitDeadlines, observer: settings.gitObserver)
            ledger.circuit = circuit
            return ledger
        } catch {
            throw .ledger(error)
        }
    }

    /// The URL as errors and logs show it (credentials removed).
    var shownRepository: String { ledger.remoteForErrors }

    /// What the worker may use it for now: closed, or open with its probe due (the next
    /// operation on it is the probe). An open circuit waiting out its backoff is not usable.
    var isUsable: Bool { circuit.admits() }

    /// Whether its circuit is closed: the last work on it went through.
    var isClosed: Bool { circuit.snapshot().state == .closed }

    /// A probe in flight on its own thread (`probeAside`).
    private let probing = Atomic<Bool>(false)

    /// Probes this backend — a listing of main on its heartbeat's ledger, which is idle while
    /// another backend is the authority — on a thread of its own, one probe at a time. It answers:
    /// its circuit closes, and the next step moves back to it. It does not: the circuit opens
    /// again for a longer backoff. No slot's step waits on it (a silent server held one step for
    /// the whole answer bound, 10 s, at every probe).
    func probeAside() {
        guard probing.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else { return }
        let thread = Thread { [self] in
            _ = try? heartbeatLedger.with { (ledger) throws(LedgerError) in _ = try ledger.remoteRefs(prefix: GridConnection.mainRef) }
            probing.store(false, ordering: .releasing)
        }
        thread.start()
    }
}

/// Another libgit2 handle on the same mirror with a lock of its own, opened
/// on first use: work on it never waits behind `withLedger`'s.
final class SideLedger: @unchecked Sendable {
    private let open: () throws(GridError) -> GitLedger
    private let lock = NSLock()
    private var ledger: GitLedger?

    init(_ open: @escaping () throws(GridError) -> GitLedger) {
        self.open = open
    }

    func with<T>(_ body: (GitLedger) throws(LedgerError) -> T) throws(GridError) -> T {
        lock.lock()
        defer { lock.unlock() }
        let opened: GitLedger
        if let ledger {
            opened = ledger
        } else {
            opened = try open()
            ledger = opened
        }
        do {
            return try body(opened)
        } catch {
            throw .ledger(error)
        }
    }
}
