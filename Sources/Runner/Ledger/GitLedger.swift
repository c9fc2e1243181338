import CGit2
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// The grid's Git repository as dgrid sees it (docs/ARCHITECTURE.md §6): a bare local mirror whose
/// object database is read and written directly — nothing is ever checked out — and
/// ref updates on the remote that are never forced, so racing workers are told
/// apart by the remote, not by luck.
///
/// Two write paths, because libgit2 1.5's transports differ:
/// - smart transports (git://, http(s)://, ssh://): push, judging each ref only by
///   the `push_update_reference` status (`GitLedger+SmartPush.swift`);
/// - the local transport (file://, a path): libgit2 would force-update existing
///   refs, so the ledger copies objects into the remote repository itself and moves
///   refs with compare-and-swap (`GitLedger+LocalRefs.swift`).
///
/// Thread-safe: every operation takes the ledger's lock, so one ledger's
/// operations run one at a time (network operations included). Use one ledger per
/// mirror directory.
public final class GitLedger: @unchecked Sendable {
    /// Default for `fetchByteLimit`: far above any sane ledger, far below a full disk.
    public static let defaultFetchByteLimit = 1 << 30

    let location: RemoteLocation
    let credentials: GitCredentials
    let fetchByteLimit: Int
    /// For ssh remotes: where host keys are verified (nil for other transports).
    let hostKeyCheck: HostKeyCheck?
    let mirrorPath: String
    let logger: Logger
    /// The mirror (git_repository), guarded by `lock`; replaced when a corrupt
    /// mirror is rebuilt (`GitLedger+MirrorRepair.swift`).
    var repository: GitHandle
    let lock = LedgerLock()
    /// The remote as shown in errors: user information and tokens removed.
    let remoteForErrors: String
    /// Notes on mirror rebuilds, guarded by `lock`.
    var rebuildNotes: [String] = []
    /// When the mirror was last rebuilt (monotonic seconds), guarded by `lock`.
    var lastRebuild: Double?
    /// Packs in the mirror above which a fetch consolidates them into one
    /// (`GitLedger+PackConsolidation.swift`); set before use.
    var packConsolidationThreshold = GitLedger.defaultPackConsolidationThreshold
    /// Loose objects checked sound since they were first read, guarded by `lock` (`LooseObjectCheck`).
    var verifiedLoose: Set<GitOID> = []
    /// How long each network operation may take in all (`GitLedger+Deadline.swift`).
    let deadlines: GitDeadlines
    /// Shared by every ledger of one backend (`GitCircuitBreaker`); nil: none (one-shot commands).
    public var circuit: GitCircuitBreaker?
    /// How long a server may stay silent — a connect, or a wait for it to send or take bytes — in
    /// seconds (0: only the idle bound and the deadlines bound it): set for a grid with several backends, whose next backend is better than a wait
    /// (`GitLedger+Deadline`, docs/ARCHITECTURE.md §11). Set before use.
    public var answerSeconds: Double = 0
    /// Told how each listing, fetch and push ended (the worker's metrics); nil: nobody.
    let observer: GitOperationObserver?
    /// Every ref the remote advertised to this ledger's last push over a smart transport, with the
    /// push's applied moves in it, and when it was taken: a listing that came with the push for free
    /// (`PushListing`). nil after a local push. Read right after the push, under the caller's lock.
    public internal(set) var lastPushListing: PushListing?

    /// Opens (or creates with git_repository_init bare) the local bare mirror at mirrorPath for `remote` (a URL: file://, git://, http(s)://, ssh://, or a plain local path). Mirror dirs 0700.
    ///
    /// `fetchByteLimit` caps what one fetch may download: a hostile remote can serve
    /// an endless pack (docs/THREATS.md, attacker 4).
    ///
    /// `knownHosts` is where an ssh remote's host key must be listed
    /// (`SSHKnownHosts`); nil means `SSHKnownHosts.fromEnvironment()`
    /// (`DGRID_SSH_KNOWN_HOSTS`, else `~/.ssh/known_hosts`). An unknown or changed
    /// host key fails every operation with `LedgerError.Kind.hostKey`.
    ///
    /// A mirror libgit2 cannot open is moved aside and recreated (the mirror is only a
    /// cache; `mirrorRebuilds` says so), and one whose objects turn out corrupt later is
    /// rebuilt from the remote by the operation that finds it.
    ///
    /// `deadlines` bound each listing, fetch and push as a whole: past it the
    /// operation fails with `.network` and `deadlineExceeded` set.
    public init(remote: String, mirrorPath: String, credentials: GitCredentials = .none,
                fetchByteLimit: Int = GitLedger.defaultFetchByteLimit, knownHosts: SSHKnownHosts? = nil,
                deadlines: GitDeadlines = GitDeadlines(), observer: GitOperationObserver? = nil,
                logger: Logger = Logger(label: "dgrid.ledger")) throws(LedgerError) {
        _ = LibGit2.initialized
        self.deadlines = deadlines
        self.observer = observer
        let remoteForErrors = Redaction.redact(remote, secrets: credentials.secrets)
        self.remoteForErrors = remoteForErrors
        location = try RemoteLocation.parse(remote)
        // A token goes to http(s) only, a key to SSH only: libgit2 would offer a
        // token as the password to an SSH server that asks for one.
        guard location.admits(credentials) else {
            throw LedgerError(.credentials, operation: "open remote", remote: remoteForErrors,
                              message: "\(credentials.kindDescription) cannot be used with a \(location.transport.rawValue) remote",
                              hint: location.transport == .ssh ? "use an SSH key or the SSH agent for an SSH grid"
                                  : location.transport == .http ? "use a token (GIT_TOKEN or a token file) for an http(s) grid"
                                  : "a \(location.transport.rawValue) remote takes no credentials")
        }
        self.credentials = credentials
        self.fetchByteLimit = fetchByteLimit
        if case .ssh(let endpoint) = location {
            hostKeyCheck = HostKeyCheck(knownHosts: knownHosts ?? .fromEnvironment(), endpoint: endpoint)
        } else {
            hostKeyCheck = nil
        }
        self.mirrorPath = mirrorPath
        self.logger = logger
        do throws(LedgerError) {
            repository = try MirrorDirectory.open(mirrorPath, remote: remoteForErrors)
        } catch where error.gitCode != nil {
            // libgit2 could not open what is there (garbled config, broken layout):
            // the mirror is a cache, so start it again.
            let aside = try Self.moveAside(mirrorPath, remote: remoteForErrors)
            repository = try MirrorDirectory.open(mirrorPath, remote: remoteForErrors)
            let note = "mirror \(mirrorPath) could not be opened (\(error.message)); moved to \(aside) and recreated empty"
            rebuildNotes.append(note)
            logger.warning("\(note)")
        }
        // libgit2 would hang or crash on a damaged loose object: check them
        // now, while nothing has read them — those written since the last
        // clean check (`LooseScanMarker`); they are few: packs hold the rest.
        let scanStarted = Int(time(nil))
        if let (path, problem) = damagedLooseObjects(modifiedSince: LooseScanMarker.since(mirror: mirrorPath)).first {
            let aside = try Self.moveAside(mirrorPath, remote: remoteForErrors)
            repository = try MirrorDirectory.open(mirrorPath, remote: remoteForErrors)
            let note = "mirror \(mirrorPath) held a damaged object (\(path): \(problem)); moved to \(aside) and recreated empty"
            rebuildNotes.append(note)
            logger.warning("\(note)")
        } else {
            LooseScanMarker.record(mirror: mirrorPath, startedAt: scanStarted)
        }
    }

    /// Notes on every time this ledger found its mirror corrupt and rebuilt it, oldest first.
    public var mirrorRebuilds: [String] {
        (try? lock.run { () throws(LedgerError) -> [String] in rebuildNotes }) ?? []
    }

    /// Every ref on the remote with one connection (ls-remote), optionally only those under `prefix` (e.g. "refs/dgrid/claims/").
    ///
    /// Includes HEAD when the remote advertises it; leaves out peeled tags (`^{}`) and
    /// names that are not valid ref names (a lying server's).
    public func remoteRefs(prefix: String? = nil) throws(LedgerError) -> [String: GitOID] {
        try observed(.list, about: prefix ?? "") { () throws(LedgerError) -> [String: GitOID] in try remoteRefsLocked(prefix: prefix) }
    }

    private func remoteRefsLocked(prefix: String?) throws(LedgerError) -> [String: GitOID] {
        try lock.run { () throws(LedgerError) -> [String: GitOID] in
            try repairingMirror { () throws(LedgerError) -> [String: GitOID] in
                try withDeadline(.list, operation: "list remote refs") { () throws(LedgerError) -> [String: GitOID] in
                    try retryingVanishedRefs { () throws(LedgerError) -> [String: GitOID] in
                        try withConnection(GIT_DIRECTION_FETCH, operation: "list remote refs") {
                            (remote, _) throws(LedgerError) -> [String: GitOID] in
                            advertisedRefs(remote, prefix: prefix)
                        }
                    }
                }
            }
        }
    }

    /// Fetches the named remote refs into the mirror, with one connection.
    ///
    /// `keepRefs`: also set the mirror's refs of the same names (force, it is our
    /// cache). Keep them for main, whose history later fetches negotiate against;
    /// leave them out for claim, result and heartbeat commits, which are read once
    /// — local refs for those would pile up and slow every later negotiation.
    /// A ref missing on the remote is skipped (the mirror keeps what it had).
    public func fetch(_ refs: [String], keepRefs: Bool = true) throws(LedgerError) {
        for name in refs { try validateRefName(name, operation: "fetch") }
        guard !refs.isEmpty else { return }
        try observed(.fetch, about: refs.joined(separator: " ")) { () throws(LedgerError) in
            try lock.run { () throws(LedgerError) in
                try repairingMirror { () throws(LedgerError) in
                    try withDeadline(.fetch, operation: Self.fetchOperation(refs)) { () throws(LedgerError) in
                        try retryingVanishedRefs { () throws(LedgerError) in try fetchLocked(refs, keepRefs: keepRefs) }
                    }
                }
            }
        }
    }

    /// Whether the mirror holds the object `id` (without asking the remote).
    public func hasObject(_ id: GitOID) -> Bool {
        (try? lock.run { () throws(LedgerError) -> Bool in
            var odb: OpaquePointer?
            guard git_repository_odb(&odb, repository.pointer) == 0, let odb else { return false }
            defer { git_odb_free(odb) }
            var raw = id.raw
            return git_odb_exists(odb, &raw) == 1
        }) ?? false
    }

    /// The fetch itself, with the lock held.
    func fetchLocked(_ refs: [String], keepRefs: Bool = true) throws(LedgerError) {
        let operation = Self.fetchOperation(refs)
        try withDeadline(.fetch, operation: operation) { () throws(LedgerError) in
            try fetchConnected(refs, keepRefs: keepRefs, operation: operation)
        }
    }

    /// The options of every fetch: no pruning, no FETCH_HEAD, no tags, and no redirects
    /// (a redirect could hand our token to another host).
    static func fetchOptions(_ state: RemoteCallbackState) -> git_fetch_options {
        var options = git_fetch_options()
        git_fetch_options_init(&options, UInt32(GIT_FETCH_OPTIONS_VERSION))
        options.callbacks = state.callbacks()
        options.prune = GIT_FETCH_NO_PRUNE
        options.update_fetchhead = 0
        options.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE
        options.follow_redirects = GIT_REMOTE_REDIRECT_NONE
        return options
    }

    /// "+ref:ref" keeps the mirror's ref (forced: the mirror is a cache of the remote,
    /// which is always right); a bare ref only brings the objects.
    static func fetchRefspecs(_ refs: [String], keepRefs: Bool) -> CStringArray {
        CStringArray(refs.map { keepRefs ? "+\($0):\($0)" : $0 })
    }

    static func fetchOperation(_ refs: [String]) -> String {
        "fetch " + (refs.count <= 3 ? refs.joined(separator: " ") : "\(refs[0]) and \(refs.count - 1) more refs")
    }

    private func fetchConnected(_ refs: [String], keepRefs: Bool, operation: String) throws(LedgerError) {
        let tipsBefore = keepRefs ? branchTips(refs) : []
        if case .local(let path) = location {
            try localFetch(refs, keepRefs: keepRefs, path: path, operation: operation)
            maintainMirror(afterFetchFrom: tipsBefore)
            return
        }
        let remote = try anonymousRemote(operation: operation)
        let state = callbackState()
        var options = Self.fetchOptions(state)
        let refspecs = Self.fetchRefspecs(refs, keepRefs: keepRefs)
        let code = withExtendedLifetime(state) {
            refspecs.withStrArray { git_remote_fetch(remote.pointer, $0, &options, "dgrid: fetch") }
        }
        if code < 0 { throw remoteFailure(code, state: state, operation: operation) }
        maintainMirror(afterFetchFrom: tipsBefore)
    }

    /// In a local grid libgit2 lists the remote's refs by reading them one by
    /// one, and a ref deleted in between (a fold deleting what it folded)
    /// fails the whole listing with "reference '…' not found". That is a remote
    /// moving, not damage to anything: list again, a few times. So is another
    /// process sharing this mirror (two `dgrid submit`s from one home) holding
    /// the lock of a mirror ref this fetch updates: that ref is a cache, try again.
    func retryingVanishedRefs<T>(_ body: () throws(LedgerError) -> T) throws(LedgerError) -> T {
        var attempt = 0
        while true {
            do throws(LedgerError) {
                return try body()
            } catch where attempt < 8 && (Self.isVanishedRemoteRef(error) || Self.isMirrorRefLocked(error)) {
                attempt += 1
                usleep(UInt32(500 << min(attempt, 6)))
            }
        }
    }

    static func isMirrorRefLocked(_ error: LedgerError) -> Bool {
        // A fetch writes only the mirror, so the lock is the mirror's (the path itself is redacted from messages).
        // libgit2 checks for the lock file, then creates it with O_EXCL: another process taking the lock
        // between the two is "failed to create locked file '…': File exists" (class OS, code -1), the same race.
        error.message.hasPrefix("failed to lock file '")
            || (error.message.hasPrefix("failed to create locked file '") && error.message.contains("File exists"))
    }

    static func isVanishedRemoteRef(_ error: LedgerError) -> Bool {
        error.gitClass == Int32(GIT_ERROR_REFERENCE.rawValue) && error.message.hasPrefix("reference '")
            && error.message.hasSuffix("' not found")
    }

    // MARK: - Shared plumbing

    func callbackState() -> RemoteCallbackState {
        RemoteCallbackState(credentials: credentials, fetchByteLimit: fetchByteLimit, hostKeyCheck: hostKeyCheck)
    }

    /// An in-memory remote bound to the mirror (fetch writes into it, push reads from it).
    func anonymousRemote(operation: String) throws(LedgerError) -> GitHandle {
        var remote: OpaquePointer?
        let code = git_remote_create_anonymous(&remote, repository.pointer, location.url)
        guard code == 0, let remote else {
            throw failure(code, kind: .invalidRemote, operation: operation,
                          hint: "check the remote URL or path")
        }
        return GitHandle(remote) { git_remote_free($0) }
    }

    /// Connects once, runs `body` with the connection, disconnects.
    func withConnection<T>(_ direction: git_direction, operation: String,
                           _ body: (OpaquePointer, RemoteCallbackState) throws(LedgerError) -> T) throws(LedgerError) -> T {
        try withDeadline(direction == GIT_DIRECTION_PUSH ? .push : .list, operation: operation) { () throws(LedgerError) -> T in
            let remote = try anonymousRemote(operation: operation)
            let state = callbackState()
            var options = git_remote_connect_options()
            git_remote_connect_options_init(&options, UInt32(GIT_REMOTE_CONNECT_OPTIONS_VERSION))
            options.callbacks = state.callbacks()
            options.follow_redirects = GIT_REMOTE_REDIRECT_NONE
            return try withExtendedLifetime(state) { () throws(LedgerError) -> T in
                let code = git_remote_connect_ext(remote.pointer, direction, &options)
                if code < 0 { throw remoteFailure(code, state: state, operation: operation) }
                defer { git_remote_disconnect(remote.pointer) }
                return try body(remote.pointer, state)
            }
        }
    }

    /// The refs a connected remote advertised.
    func advertisedRefs(_ remote: OpaquePointer, prefix: String?) -> [String: GitOID] {
        var heads: UnsafeMutablePointer<UnsafePointer<git_remote_head>?>?
        var count = 0
        guard git_remote_ls(&heads, &count, remote) == 0, let heads else { return [:] }
        var result: [String: GitOID] = [:]
        for index in 0..<count {
            guard let head = heads[index], let cName = head.pointee.name else { continue }
            let name = String(cString: cName)
            if let prefix, !name.hasPrefix(prefix) { continue }
            guard !name.hasSuffix("^{}"), Self.isValidRefName(name) || name == "HEAD" else { continue }
            let oid = GitOID(raw: head.pointee.oid)
            guard !oid.isZero else { continue }
            result[name] = oid
        }
        return result
    }

    static func isValidRefName(_ name: String) -> Bool {
        var valid: Int32 = 0
        return git_reference_name_is_valid(&valid, name) == 0 && valid != 0
    }

    func validateRefName(_ name: String, operation: String) throws(LedgerError) {
        guard name.hasPrefix("refs/"), !name.hasPrefix("refs/dgrid-push/"), Self.isValidRefName(name) else {
            throw LedgerError(.invalidInput, operation: "\(operation) \(name)", remote: remoteForErrors,
                              message: "'\(name)' is not a valid ref name under refs/",
                              hint: "use a name like refs/heads/main or refs/dgrid/claims/<task_id>")
        }
    }

    /// A LedgerError from libgit2's last error on this thread.
    func failure(_ code: Int32, kind: LedgerError.Kind, operation: String, hint: String) -> LedgerError {
        let last = LibGit2.Failure(code: code)
        return LedgerError(kind, operation: operation, remote: remoteForErrors, message: last.message, hint: hint,
                           gitClass: last.gitClass, gitCode: last.code, secrets: credentials.secrets)
    }

    /// A failed connection, fetch or push, classified by what the callbacks saw.
    func remoteFailure(_ code: Int32, state: RemoteCallbackState, operation: String) -> LedgerError {
        if let refusal = state.hostKeyRefusal {
            return LedgerError(.hostKey, operation: operation, remote: remoteForErrors, message: refusal.message,
                               hint: refusal.hint, gitClass: LibGit2.Failure(code: code).gitClass, gitCode: code,
                               secrets: credentials.secrets)
        }
        if state.fetchTooLarge {
            return LedgerError(.object, operation: operation, remote: remoteForErrors,
                               message: "the remote sent more than \(fetchByteLimit) bytes",
                               hint: "the repository holds something far larger than a ledger; raise fetchByteLimit only if that is expected")
        }
        if state.credentialsRefused || code == GIT_EAUTH.rawValue {
            let hint = switch credentials {
            case .none: "the remote wants credentials: set GIT_TOKEN, a token file (0600), or an SSH key"
            case .token: "the remote refused the token: check that it is valid and may push to this repository"
            case .sshKey, .sshAgent: "the remote refused the SSH key: check that it is authorised for this repository"
            }
            return failure(code, kind: .authentication, operation: operation, hint: hint)
        }
        return failure(code, kind: .network, operation: operation,
                       hint: "check that the remote is reachable and the repository exists")
    }
}
