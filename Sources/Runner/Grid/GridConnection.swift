import Foundation
import Logging
import Synchronization
import Trust

/// One grid's ledger, shared by a worker's slots. libgit2 objects are not
/// safe to use from several threads at once, so every Git operation goes
/// through `withLedger`; sandboxes run outside it, in parallel.
///
/// The heartbeat has a ledger of its own (`withHeartbeatLedger`: another
/// libgit2 handle on the same mirror directory, its own lock): lease renewal
/// never waits behind a slot's fetch, listing or claim, however long a slow
/// or dripping remote makes those take, so a running task's lease cannot
/// lapse because of bulk Git work (docs/THREATS.md, T10).
public final class GridConnection: @unchecked Sendable {
    public let settings: GridSettings
    /// The grid's Git servers, the primary first (`GridBackend`, docs/ARCHITECTURE.md §11): each
    /// with the slots' ledger, the heartbeat's (opened by the first beat: `submit`, `status` and
    /// `fold` never beat) and the checkpoints' (a 100 MiB snapshot never holds up a slot's claim
    /// or the heartbeat), and its circuit breaker.
    let backends: [GridBackend]
    /// The backend the last Git step used (`authority`): a change is logged and counted.
    private var lastAuthority = 0
    private var authoritySwitches = 0
    /// Serialises the slots' Git work on `ledger` (held across network operations).
    private let ledgerLock = NSLock()
    /// The slots' claims and results, several to a push when they come together (`pushTogether`).
    private let pushGroup = PushGroup<MoveBuilder, PushedMoves>()
    /// Guards the bookkeeping below; never held across Git work, so the
    /// heartbeat can read and note its own refs while a slot fetches.
    private let stateLock = NSLock()
    /// This node's key, read (or made) on first use; under `stateLock`.
    private var cachedNodeKey: NodeKey?
    private var trustOfWorkers: WorkerTrust?
    /// The refs seen at the last snapshot: main and refs/dgrid/* are fetched only when they moved.
    private var lastFetched: [String: GitOID] = [:]
    /// main's file list for its last tip, and small immutable objects by id
    /// (claim records, queued task headers): a poll re-reads nothing that
    /// did not change. Git ids name content, so entries never go stale.
    private var mainTree: (tip: GitOID, files: MainFiles, index: GridSnapshot.MainIndex)?
    /// Which ref named each commit at the last listing: a claim, result or
    /// heartbeat commit is fetched only when something reads it.
    private var refNaming: [GitOID: String] = [:]
    private var memo: [String: Any] = [:]
    /// The queue's readiness at the last tip of main asked for (`QueueReadiness`), carried
    /// to the next tip rather than rebuilt; `readinessLock` lets one slot at a time advance it.
    private var readinessState: QueueReadiness?
    private let readinessLock = NSLock()
    /// Queued task headers by blob id: read for every queued task once per tip
    /// (ten thousand on a large DAG), so kept apart from `memo`'s string keys.
    private var headers: [GitOID: QueuedHeader] = [:]
    /// Claim commits by when they were first listed (monotonic seconds); only those still listed are kept.
    private var claimFirstSeen: [GitOID: Double] = [:]
    /// The fold-lease commit last listed and when it was first seen (`GridFoldLease`).
    private var leaseSighting: (id: GitOID, at: Date)?
    private var listedBefore = false
    /// The last listing (with main's files): whether an idle worker has anything to fold.
    private var lastListing: GridSnapshot?
    /// The newest listing this worker holds — its last `snapshot()`, or what a push brought
    /// (`PushListing`) — when it was taken (monotonic seconds) and from which backend: the pick
    /// after a task reuses it while it is young (`snapshot(reusingWithin:)`).
    private var newestListing: (refs: [String: GitOID], at: Double, backend: Int)?
    /// Archive index shards by blob id, parsed once (`ArchiveCatalog`); under `stateLock`.
    private var archiveShards: [GitOID: ArchiveShard] = [:]
    /// The thread inside `withLedger` (0 for none): a shard asked for while the
    /// snapshot is being built (its replay check) is read without taking the lock again.
    private let ledgerOwner = Atomic<UInt>(0)

    /// Whose claims bind and whose results fold (`WorkerTrust`, docs/ARCHITECTURE.md §11): set by a
    /// worker from its host's trust. nil (status, listings): claims are read as written, and a fold reads the host's files.
    public var workerTrust: WorkerTrust? {
        get { stateLock.withLock { trustOfWorkers } }
        set { stateLock.withLock { trustOfWorkers = newValue } }
    }

    /// This node's key (`NodeKey`): read, or made on first use.
    public func nodeKey() throws(GridError) -> NodeKey {
        if let key = stateLock.withLock({ cachedNodeKey }) { return key }
        let key = try NodeKey.loadOrCreate(state: settings.state, nodeID: settings.nodeID).key
        stateLock.withLock { cachedNodeKey = key }
        return key
    }

    /// A record and this node's signature of its bytes: the two files a claim, heartbeat or result commit holds.
    static func signed(_ path: String, _ bytes: [UInt8], by key: NodeKey) -> [LedgerChange] {
        [LedgerChange(path: path, content: bytes), LedgerChange(path: path + NodeKey.signatureSuffix, content: key.sign(bytes))]
    }

    static let logger = Logger(label: "dgrid.backends")
    public static let mainRef = "refs/heads/main"
    static let claimsPrefix = "refs/dgrid/claims/"
    static let resultsPrefix = "refs/dgrid/results/"
    static let nodesPrefix = "refs/dgrid/nodes/"
    static let checkpointsPrefix = "refs/dgrid/checkpoints/"

    public init(settings: GridSettings) throws(GridError) {
        // Checked before anything is created: every record this node writes carries its id.
        if let problem = NodeIdentifier.problem(settings.nodeID) { throw .local(problem) }
        self.settings = settings
        let mirror = try settings.mirrorPath()
        var backends = [try GridBackend(index: 0, repository: settings.repository, credentials: settings.credentials,
                                        settings: settings, mirror: mirror)]
        for (offset, backup) in settings.backups.enumerated() {
            backends.append(try GridBackend(index: offset + 1, repository: backup.repository, credentials: backup.credentials,
                                            settings: settings, mirror: mirror))
        }
        self.backends = backends
    }

    /// The repository the grid was last read from (the authority then): the one an error about
    /// what the grid holds names — with several backends, not always the first.
    var repositoryInUse: String {
        let index = stateLock.withLock { lastAuthority }
        return backends.first { $0.index == index }?.repository ?? settings.repository
    }

    /// The backend claims and results go to now: the first whose circuit is closed. One ahead of
    /// it whose probe is due is probed aside (`GridBackend.probeAside`), off the slots' path; once
    /// it answers, its circuit is closed and it is the authority again. With no circuit closed,
    /// the first that lets work through (open with its probe due: the next step is the probe);
    /// with none, the primary, whose refusal says when its next probe is. A grid with one
    /// backend always uses it.
    var authority: GridBackend {
        let chosen = backends.first { $0.isClosed } ?? backends.first { $0.isUsable } ?? backends[0]
        for backend in backends where backend.index < chosen.index && backend.isUsable { backend.probeAside() }
        let switched = stateLock.withLock { () -> Int? in
            guard chosen.index != lastAuthority else { return nil }
            let from = lastAuthority
            lastAuthority = chosen.index
            authoritySwitches += 1
            return from
        }
        if let from = switched {
            Self.logger.warning("the grid's authority moved", metadata: ["from": "\(backends[from].shownRepository)",
                                                                          "to": "\(chosen.shownRepository)"])
        }
        return chosen
    }

    /// Which backend is the authority now, and how often it changed in this process.
    public var authorityState: (index: Int, switches: Int) {
        let index = authority.index
        return stateLock.withLock { (index, authoritySwitches) }
    }

    /// The authority's breaker (`GitCircuitBreaker`): the worker's Git health as its node record and metrics show it.
    public var circuit: GitCircuitBreaker { authority.circuit }

    func withLedger<T>(_ body: (GitLedger) throws(LedgerError) -> T) throws(GridError) -> T {
        // A network failure that opened the authority's circuit moves this very step to the next
        // backend: every move is a compare-and-swap, so a step retried elsewhere applies at most
        // where its expectations hold. A failure that leaves the circuit closed is only retried later.
        try holdingLedgerLock { () throws(GridError) -> T in
            var tried: Set<Int> = []
            while true {
                let backend = authority
                tried.insert(backend.index)
                do throws(LedgerError) {
                    return try notingPushListing(of: backend.ledger, backend: backend.index) { () throws(LedgerError) -> T in
                        try body(backend.ledger)
                    }
                } catch where error.kind == .network && backends.count > 1 && !backend.isUsable
                                && backends.contains(where: { !tried.contains($0.index) && $0.isUsable }) {
                    continue
                } catch {
                    throw .ledger(error)
                }
            }
        }
    }

    /// Builds a slot's ref moves in the ledger; run by whichever slot leads the push.
    typealias MoveBuilder = (GitLedger) throws(LedgerError) -> [RefMove]

    /// What became of one slot's moves in a shared push.
    struct PushedMoves {
        let moves: [RefMove]
        let outcomes: [String: RefUpdate]

        func outcome(_ name: String) -> RefUpdate { outcomes[name] ?? .rejected(reason: "no outcome for \(name)") }
    }

    /// `build`'s ref moves (`names`: the refs it may move), pushed together with what the other
    /// slots push meanwhile (`PushGroup`): a claim or a result made while another slot's push is
    /// on the wire goes with the next push, not one of its own. Each ref is judged on its own.
    func pushTogether(names: Set<String>, _ build: @escaping MoveBuilder) throws(GridError) -> PushedMoves {
        typealias Group = PushGroup<MoveBuilder, PushedMoves>
        let entry = Group.Entry(build: build, names: names)
        return try pushGroup.push(entry) { batch in
            var results: [ObjectIdentifier: Result<PushedMoves, GridError>] = [:]
            do throws(GridError) {
                try withLedger { (ledger) throws(LedgerError) in
                    // Run again from the start when the step moves to another backend.
                    results = [:]
                    var built: [(Group.Entry, [RefMove])] = []
                    for member in batch {
                        do throws(LedgerError) {
                            built.append((member, try member.build(ledger)))
                        } catch {
                            results[ObjectIdentifier(member)] = .failure(.ledger(error))
                        }
                    }
                    let outcomes = try ledger.moveRefs(built.flatMap(\.1))
                    for (member, moves) in built {
                        let own = Set(moves.map(\.name))
                        results[ObjectIdentifier(member)] = .success(PushedMoves(moves: moves, outcomes: outcomes.filter { own.contains($0.key) }))
                    }
                }
            } catch {
                for member in batch where results[ObjectIdentifier(member)] == nil { results[ObjectIdentifier(member)] = .failure(error) }
            }
            return results
        }.get()
    }

    /// `body` on one backend's ledger, whichever is the authority (the reconciler, `dgrid status`),
    /// under the same lock as `withLedger`.
    func withLedger<T>(of backend: GridBackend, _ body: (GitLedger) throws(LedgerError) -> T) throws(GridError) -> T {
        try holdingLedgerLock { () throws(GridError) -> T in
            do throws(LedgerError) {
                return try body(backend.ledger)
            } catch {
                throw .ledger(error)
            }
        }
    }

    /// The slots' ledger lock, with this thread noted as its owner (`archiveShard` reads inside it).
    private func holdingLedgerLock<T>(_ body: () throws(GridError) -> T) throws(GridError) -> T {
        ledgerLock.lock()
        ledgerOwner.store(UInt(pthread_self()), ordering: .relaxed)
        defer {
            ledgerOwner.store(0, ordering: .relaxed)
            ledgerLock.unlock()
        }
        return try body()
    }

    /// The heartbeat's own ledger: renewing leases and the node record never
    /// queues behind `withLedger`'s bulk work.
    func withHeartbeatLedger<T>(_ body: (GitLedger) throws(LedgerError) -> T) throws(GridError) -> T {
        let backend = authority
        return try backend.heartbeatLedger.with { (ledger) throws(LedgerError) -> T in
            try notingPushListing(of: ledger, backend: backend.index) { () throws(LedgerError) -> T in try body(ledger) }
        }
    }

    /// `body`, then the listing a push inside it brought (`PushListing`), kept when it is the newest.
    private func notingPushListing<T>(of ledger: GitLedger, backend: Int, _ body: () throws(LedgerError) -> T) throws(LedgerError) -> T {
        let started = Self.monotonicNow()
        let result = try body()
        if let listing = ledger.lastPushListing, listing.listedAt >= started {
            noteListing(listing.refs, at: listing.listedAt, backend: backend)
        }
        return result
    }

    private func noteListing(_ refs: [String: GitOID], at: Double, backend: Int) {
        stateLock.withLock {
            if let newest = newestListing, newest.at > at { return }
            newestListing = (refs, at, backend)
        }
    }

    /// The checkpoints' own ledger (opened on first use, like the heartbeat's).
    func withCheckpointLedger<T>(_ body: (GitLedger) throws(LedgerError) -> T) throws(GridError) -> T {
        try authority.checkpointLedger.with(body)
    }

    /// The grid as it is now: one listing of every ref, with main fetched on the
    /// same connection only when its tip moved. Claim, result and heartbeat commits are
    /// fetched when first read (`file`), so an idle poll fetches nothing and
    /// a busy one only what it looks at.
    func snapshot() throws(GridError) -> GridSnapshot {
        try withLedger { (ledger) throws(LedgerError) -> GridSnapshot in
            // Taken once the ledger is ours: a wait behind another slot's push does not age it.
            let listing = Self.monotonicNow()
            // Main fetched on the listing's own connection when its tip moved: one read, not two.
            let known = stateLock.withLock { lastFetched[Self.mainRef] }
            var refs = try ledger.remoteRefs { refs in
                guard let main = refs[Self.mainRef], main != known else { return [] }
                return [Self.mainRef]
            }
            if let forwarded = try forwardingAnOlderMain(refs[Self.mainRef], known: known, ledger: ledger) {
                refs[Self.mainRef] = forwarded
            }
            if let main = refs[Self.mainRef], main != known { stateLock.withLock { lastFetched[Self.mainRef] = main } }
            noteListing(refs, at: listing, backend: stateLock.withLock { lastAuthority })
            return try snapshot(of: refs, ledger: ledger)
        }
    }

    /// The grid as the newest listing this worker holds shows it, when that was taken at most
    /// `seconds` ago on the backend in use and its main is the one the mirror has: the
    /// advertisement the slot's own result push brought, or another slot's listing — the pick
    /// after a task then makes no read of its own (docs/ARCHITECTURE.md §11). Otherwise a listing.
    /// As safe as a listing: a claim is a compare-and-swap, and the check after it reads a listing
    /// taken since the claim push began (that push's own, or newer), or lists when main moved.
    func snapshot(reusingWithin seconds: Double, takenAfter: Double = -.infinity) throws(GridError) -> GridSnapshot {
        if let reused = try reusedSnapshot(within: seconds, takenAfter: takenAfter) { return reused }
        return try snapshot()
    }

    /// The newest listing this worker holds as a snapshot, when `snapshot(reusingWithin:)` may
    /// reuse it — and, with `takenAfter` (monotonic seconds), only one taken since then; nil when
    /// a listing is needed.
    func reusedSnapshot(within seconds: Double, takenAfter: Double = -.infinity) throws(GridError) -> GridSnapshot? {
        let now = Self.monotonicNow()
        let reusable = stateLock.withLock { () -> [String: GitOID]? in
            guard seconds > 0, let newest = newestListing, now - newest.at <= seconds, newest.at >= takenAfter,
                  newest.backend == lastAuthority,
                  let main = newest.refs[Self.mainRef], main == lastFetched[Self.mainRef] else { return nil }
            return newest.refs
        }
        guard let reusable else { return nil }
        return try withLedger { (ledger) throws(LedgerError) -> GridSnapshot in try snapshot(of: reusable, ledger: ledger) }
    }

    /// A grid of several backends whose authority serves an older main than this worker has
    /// already seen — it is back from a failover, or was restored from an old copy — is moved
    /// forward to the main the worker knows (compare-and-swap) before anything is claimed from
    /// it: tasks finished since must not look queued again (docs/ARCHITECTURE.md §11). Returns
    /// the tip main now has, or nil when nothing was done. With one backend main is taken as served.
    private func forwardingAnOlderMain(_ listed: GitOID?, known: GitOID?, ledger: GitLedger) throws(LedgerError) -> GitOID? {
        guard backends.count > 1, let listed, let known, listed != known, ledger.hasObject(listed), ledger.hasObject(known),
              try ledger.isAncestor(listed, of: known) else { return nil }
        guard try ledger.updateRef(Self.mainRef, from: listed, to: known) == .applied else { return nil }
        try ledger.setMirrorRef(Self.mainRef, to: known)
        Self.logger.warning("the grid's authority served an older main than this worker had seen: moved it forward",
                            metadata: ["backend": "\(ledger.remoteForErrors)", "from": "\(listed)", "to": "\(known)"])
        return known
    }

    /// A snapshot of the listing `refs` (main's objects already in the mirror), under the ledger lock.
    private func snapshot(of refs: [String: GitOID], ledger: GitLedger) throws(LedgerError) -> GridSnapshot {
        var naming: [GitOID: String] = [:]
        for (name, oid) in refs where name.hasPrefix("refs/dgrid/") { naming[oid] = name }
        stateLock.withLock {
            refNaming = naming
            // Claims already there at our first listing are of unknown age: they
            // count as seen long ago, so a worker just started reads them (once,
            // in one fetch) and takes over those whose lease has run out.
            let now = listedBefore ? Self.monotonicNow() : -Double.infinity
            listedBefore = true
            var seen: [GitOID: Double] = [:]
            for (name, oid) in refs where name.hasPrefix(Self.claimsPrefix) { seen[oid] = claimFirstSeen[oid] ?? now }
            claimFirstSeen = seen
        }
        let main = refs[Self.mainRef]
        var files = MainFiles.empty
        var index: GridSnapshot.MainIndex?
        if let main {
            // mainTree is only touched here, under ledgerLock.
            if let cached = mainTree, cached.tip == main {
                files = cached.files
                index = cached.index
            } else {
                files = MainFiles(listing: try ledger.listing(of: main, keepingAsEntries: Set(MainFiles.entryFolders)))
                let shards = ArchiveCatalog.shards(in: files.others)
                let archive = shards.isEmpty ? ArchiveCatalog.empty
                    : ArchiveCatalog(shards: shards) { [weak self] blob in self?.archiveShard(blob) ?? ArchiveShard([]) }
                let classified = GridSnapshot.MainIndex(files: files, archive: archive)
                mainTree = (main, files, classified)
                index = classified
            }
        }
        var snapshot = GridSnapshot(mainTip: main, files: files,
                                    claims: Self.taskRefs(refs, prefix: Self.claimsPrefix),
                                    results: Self.taskRefs(refs, prefix: Self.resultsPrefix),
                                    nodes: Self.nodeRefs(refs), index: index,
                                    checkpoints: Self.taskRefs(refs, prefix: Self.checkpointsPrefix))
        snapshot.replicaClaims = ReplicaRefs.parse(refs, prefix: Self.claimsPrefix)
        snapshot.votes = ReplicaRefs.parse(refs, prefix: Self.resultsPrefix)
        snapshot.foldLease = refs[GridFoldLease.refName]
        stateLock.withLock { lastListing = snapshot }
        return snapshot
    }

    /// The largest archive index shard read: ~400 lines of ~120 bytes per 100,000 archived tasks.
    static let archiveShardLimit = 16 << 20

    /// One archive index shard's entries, parsed once per blob. A shard that cannot
    /// be read now (a broken connection) is not remembered, so the next ask tries again.
    private func archiveShard(_ blob: GitOID) -> ArchiveShard {
        if let cached = stateLock.withLock({ archiveShards[blob] }) { return cached }
        let bytes: [UInt8]?
        if ledgerOwner.load(ordering: .relaxed) == UInt(pthread_self()) {
            bytes = try? authority.ledger.blob(blob, limit: Self.archiveShardLimit)  // inside withLedger, on this thread
        } else {
            bytes = try? withLedger { (ledger) throws(LedgerError) in try ledger.blob(blob, limit: Self.archiveShardLimit) }
        }
        guard let bytes else { return ArchiveShard([]) }
        let shard = ArchiveShard(bytes)
        stateLock.withLock { archiveShards[blob] = shard }
        return shard
    }

    /// Refs under `prefix` whose last component is a valid task id; anything else a writer pushed is ignored.
    static func taskRefs(_ refs: [String: GitOID], prefix: String) -> [String: GitOID] {
        var result: [String: GitOID] = [:]
        for (name, oid) in refs where name.hasPrefix(prefix) {
            let id = String(name.dropFirst(prefix.count))
            if TaskParser.isValidTaskID(id) { result[id] = oid }
        }
        return result
    }

    static func nodeRefs(_ refs: [String: GitOID]) -> [String: GitOID] {
        var result: [String: GitOID] = [:]
        for (name, oid) in refs where name.hasPrefix(nodesPrefix) {
            let id = String(name.dropFirst(nodesPrefix.count))
            if LedgerLayout.isValidNodeID(id) { result[id] = oid }
        }
        return result
    }

    /// A file of a commit (a claim, a result), bounded.
    func file(_ path: String, of commit: GitOID, limit: Int = 1 << 20) throws(GridError) -> [UInt8]? {
        try withTree(of: commit) { (files, ledger) throws(LedgerError) -> [UInt8]? in
            try files[path].map { (blob) throws(LedgerError) in try ledger.blob(blob, limit: limit) }
        }
    }

    /// A node's record at `path` in `commit` and its signature (`path.sig`, docs/ARCHITECTURE.md §11), from
    /// one read of the commit's tree; nil when the record is absent. The record over `limit` throws, as
    /// `file` does; a signature file over its limit is no signature, said as such (`SignedRecord.signatureProblem`).
    func signedRecord(_ path: String, of commit: GitOID, limit: Int) throws(GridError) -> SignedRecord? {
        try withTree(of: commit) { (files, ledger) throws(LedgerError) -> SignedRecord? in
            guard let blob = files[path] else { return nil }
            var record = SignedRecord(bytes: try ledger.blob(blob, limit: limit), signature: nil, signatureProblem: nil)
            if let signature = files[path + NodeKey.signatureSuffix] {
                do throws(LedgerError) {
                    record.signature = try ledger.blob(signature, limit: SSHSignatureLimit.bytes)
                } catch where error.kind == .object {
                    record.signatureProblem = "\(path)\(NodeKey.signatureSuffix): \(error.message)"
                }
            }
            return record
        }
    }

    /// `body` with the blobs of `commit`'s tree, fetching the commit first when the mirror lacks it;
    /// `objectGone` when its ref moved or went away since the listing.
    private func withTree<T>(of commit: GitOID, _ body: ([String: GitOID], GitLedger) throws(LedgerError) -> T) throws(GridError) -> T {
        let found = try withLedger { (ledger) throws(LedgerError) -> T? in
            let files: [String: GitOID]
            do throws(LedgerError) {
                files = try ledger.tree(of: commit)
            } catch {
                // Not in the mirror yet: fetch the ref that named it at the last listing.
                guard let name = stateLock.withLock({ refNaming[commit] }) else { throw error }
                do throws(LedgerError) {
                    try ledger.fetch([name], keepRefs: false)
                    files = try ledger.tree(of: commit)
                } catch where error.kind != .network && error.kind != .authentication {
                    // The ref moved or went away in between: not an error, a newer state.
                    return .none
                }
            }
            return .some(try body(files, ledger))
        }
        guard let found else { throw .objectGone(commit: commit.hex) }
        return found
    }

    /// Fetches, with one connection, every commit of `commits` the mirror lacks
    /// (by the ref that named it at the last listing): a fold reading fifty
    /// results, or a pick checking the leases of stale-looking claims, costs one
    /// fetch instead of one per commit. Commits no ref named are left to `file`.
    func prefetch(_ commits: [GitOID]) throws(GridError) {
        // Nothing to read: not even the ledger's lock, which another slot may hold across a push.
        guard !commits.isEmpty else { return }
        try withLedger { (ledger) throws(LedgerError) in
            let naming = stateLock.withLock { refNaming }
            let names = Set(commits.filter { !ledger.hasObject($0) }.compactMap { naming[$0] })
            guard !names.isEmpty else { return }
            do throws(LedgerError) {
                try ledger.fetch(names.sorted(), keepRefs: false)
            } catch where error.kind != .network && error.kind != .authentication {
                // A ref moved or went away in between; `file` says so per commit.
            }
        }
    }

    /// When this connection first saw each claim commit (monotonic seconds): a
    /// live claim is renewed every heartbeat, so one unchanged for longer
    /// looks stale and is worth reading; fresh ones are not fetched at all.
    func firstSeen(_ commit: GitOID) -> Double {
        stateLock.withLock { claimFirstSeen[commit] ?? Self.monotonicNow() }
    }

    static func monotonicNow() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }

    /// Records a ref this worker moved itself: its objects are already in the
    /// mirror (we built them), so the next snapshot need not fetch it.
    func noteOwnUpdate(_ name: String, to target: GitOID?) {
        stateLock.withLock {
            lastFetched[name] = target
            if let target { refNaming[target] = name }
        }
    }

    /// The last listing, if any: what a worker just saw, for decisions that need not list again.
    func lastSnapshot() -> GridSnapshot? {
        stateLock.withLock { lastListing }
    }

    /// Whether the last listing shows work for a fold: a result, or a claim
    /// on a task main does not show as running yet. Running tasks already in
    /// `in_progress/` and heartbeats alone do not count (see GridWorker).
    func lastListingHasWorkToFold() -> Bool {
        // Read outside the lock: asking the archive may read a shard, which takes it.
        guard let listing = stateLock.withLock({ lastListing }) else { return false }
        if !listing.results.isEmpty { return true }
        // A quorum task with as many votes as its agreement needs may be decided (`QuorumTally`).
        if listing.votes.contains(where: { id, votes in
            guard let path = listing.queuePaths(of: id).first, let blob = listing.files[path],
                  let quorum = try? queuedHeader(blob).quorum else { return !votes.isEmpty }
            return votes.count >= quorum.agree
        }) { return true }
        return listing.claims.keys.contains { id in
            !listing.finishedTaskIDs.contains(id) && listing.inProgressPaths(of: id).isEmpty
        }
    }

    /// Whether the last listing shows queued tasks a fold would end without
    /// running (a dependency ruled them out, a cycle, a dependency the grid never
    /// had: docs/ARCHITECTURE.md §10). The picker built the index for that tip already.
    func lastListingHasDependencyEndings() -> Bool {
        guard let listing = stateLock.withLock({ lastListing }),
              let index = try? dependencies(of: listing) else { return false }
        return index.final.contains { listing.claims[$0.id] == nil && listing.results[$0.id] == nil }
    }

    /// When the fold-lease commit `id` was first seen: `now` when it is new; nil when it is the
    /// first this process sees at all and `readingAnUnseenOne` — it may be this node's own, from a
    /// process before this one, and only reading it tells (`GridFoldLease.acquire`).
    func leaseFirstSeen(_ id: GitOID, now: Date, readingAnUnseenOne: Bool) -> Date? {
        stateLock.withLock {
            if let seen = leaseSighting, seen.id == id { return seen.at }
            let first = leaseSighting == nil
            leaseSighting = (id, now)
            return first && readingAnUnseenOne ? nil : now
        }
    }

    /// A lease commit this worker saw replace the one it expected (its push was refused, and the
    /// push was shown the new one): another worker wrote it just now — seen from now on, never
    /// read as the first lease of a process. At a fleet's start every worker but one loses the
    /// race for the lease, and each then read the winner's (bench/scale.sh).
    func noteLeaseTaken(_ id: GitOID, now: Date) {
        stateLock.withLock {
            if leaseSighting?.id != id { leaseSighting = (id, now) }
        }
    }

    /// A ref's value as this worker last moved it (or fetched it); nil when unknown.
    func ownRef(_ name: String) -> GitOID? {
        stateLock.withLock { lastFetched[name] }
    }

    /// `make(id)` once per object id and purpose; later calls reuse the value.
    func memoized<T>(_ purpose: String, _ id: GitOID, _ make: () throws(GridError) -> T) throws(GridError) -> T {
        let key = purpose + ":" + id.hex
        // Unwrap the lookup first: for an Optional T, `memo[key] as? T` would
        // turn a miss into a hit holding nil.
        if let found = stateLock.withLock({ memo[key] }), let value = found as? T { return value }
        let value = try make()
        stateLock.withLock {
            if memo.count > 100_000 { memo.removeAll() }
            memo[key] = value
        }
        return value
    }

    /// main's queue readiness at `snapshot`'s tip (docs/ARCHITECTURE.md §10): carried from
    /// the last tip asked for, built from nothing only the first time.
    func readiness(of snapshot: GridSnapshot) throws(GridError) -> QueueReadiness? {
        guard let tip = snapshot.mainTip else { return nil }
        readinessLock.lock()
        defer { readinessLock.unlock() }
        let last = stateLock.withLock { readinessState }
        if let last, last.tip == tip { return last }
        let next: QueueReadiness
        if let last {
            next = try last.advanced(to: snapshot, tip: tip, connection: QueueReadiness.Context(self))
        } else {
            next = try QueueReadiness.build(snapshot, tip: tip, connection: QueueReadiness.Context(self))
        }
        stateLock.withLock { readinessState = next }
        return next
    }

    func cachedHeader(_ id: GitOID) -> QueuedHeader? {
        stateLock.withLock { headers[id] }
    }

    func cacheHeader(_ header: QueuedHeader, for id: GitOID) {
        stateLock.withLock {
            // Blobs that left the queue are not asked again: bounded like `memo`.
            if headers.count > 200_000 { headers.removeAll() }
            headers[id] = header
        }
    }

    func blob(_ id: GitOID, limit: Int) throws(GridError) -> [UInt8] {
        try withLedger { (ledger) throws(LedgerError) -> [UInt8] in try ledger.blob(id, limit: limit) }
    }
}

/// What ordering and readiness need from a queued file, kept per blob id.
struct QueuedHeader {
    let priority: TaskPriority?
    let createdAt: String
    /// Empty for a task with no dependencies, or one that does not parse (its worker rejects it).
    var dependsOn: [String] = []
    var dependencyMode: DependencyMode = .default
    /// Set for a replicated task only (`TaskQuorum.isReplicated`).
    var quorum: TaskQuorum? = nil
}

extension GridConnection {
    /// The priority, creation time and dependencies of the queued file `blob`, read once per blob.
    func queuedHeader(_ id: GitOID) throws(GridError) -> QueuedHeader {
        if let known = cachedHeader(id) { return known }
        // One byte over the limit is enough to know the task is refused.
        let parsed = try? TaskParser.parse(try blob(id, limit: settings.limits.maxFileBytes + 1), limits: settings.limits).get()
        let header = QueuedHeader(priority: parsed?.priority, createdAt: parsed?.createdAt ?? "", dependsOn: parsed?.dependsOn ?? [],
                                  dependencyMode: parsed?.dependencyMode ?? .default,
                                  quorum: parsed?.quorum.flatMap { $0.isReplicated ? $0 : nil })
        cacheHeader(header, for: id)
        return header
    }
}

/// Who stands behind a task file on the grid, as this host's trust sees it.
enum TaskSigning: Equatable {
    case unsigned
    /// A `.sig` whose signatures do not verify or name no trusted key here.
    case untrusted
    /// The first trusted signer (`TaskSignatureCheck.principal`).
    case principal(String)
}

extension GridConnection {
    /// Who signed the task at `path` (the `.sig` and `.asc` beside it), verified once per task and signature blobs.
    func signing(ofTaskAt path: String, in snapshot: GridSnapshot, check: TaskSignatureCheck) throws(GridError) -> TaskSigning {
        guard let taskBlob = snapshot.files[path] else { return .unsigned }
        let signatureBlobs = TaskSignatureFiles.suffixes.map { (suffix: $0, blob: snapshot.files[path + $0]) }
        guard signatureBlobs.contains(where: { $0.blob != nil }) else { return .unsigned }
        let limit = settings.limits.maxFileBytes
        let key = "principal:" + signatureBlobs.map { $0.blob?.hex ?? "-" }.joined(separator: ":")
        return try memoized(key, taskBlob) { () throws(GridError) -> TaskSigning in
            guard let bytes = try? blob(taskBlob, limit: limit) else { return .untrusted }
            var files = TaskSignatureFiles()
            for (suffix, id) in signatureBlobs {
                guard let id else { continue }
                guard let content = try? blob(id, limit: TaskSignatureFiles.maxBytes) else { return .untrusted }
                files[suffix] = content
            }
            return check.principal(bytes: bytes, signatures: files).map { .principal($0) } ?? .untrusted
        }
    }
}

extension GridConnection {
    /// `host`'s trust with main's fleet policy beneath it (`FleetPolicy`), as
    /// `snapshot` shows it: the one reader the worker and the CLI share.
    func fleetTrust(_ host: HostTrust, in snapshot: GridSnapshot, pin: PolicySerialPin?) throws(GridError) -> (HostTrust, FleetPolicy.Outcome) {
        guard let policyBlob = snapshot.files[FleetPolicy.path] else { return (host, .absent) }
        guard let policy = try? blob(policyBlob, limit: FleetPolicy.maxBytes) else {
            return (host, .refused("\(FleetPolicy.path) is over \(FleetPolicy.maxBytes) bytes or unreadable"))
        }
        let signature = snapshot.files[FleetPolicy.signaturePath].flatMap { try? blob($0, limit: TaskSignatureFiles.maxBytes) }
        return FleetPolicy.effective(host: host, policy: policy, signature: signature,
                                     grid: try GridIdentity.read(snapshot, connection: self), pin: pin)
    }
}
