import CGit2

/// Ref moves over git://, http(s):// and ssh://: one connection, the advertised
/// value checked against what the caller expects, then a push that never overwrites
/// blindly (a history-replacing move skips the fast-forward rule, not the old value).
/// The server's receive-pack checks the old value under its ref lock, so a ref that
/// moved after we connected is refused there (docs/ARCHITECTURE.md §6).
extension GitLedger {
    /// Where pushes take their source from in the mirror: one unique name per push,
    /// deleted afterwards, so concurrent pushes from one mirror never share a ref.
    static let pushRefPrefix = "refs/dgrid-push/"

    /// `shown`: every ref the remote advertised to the push, set once it arrived — the caller makes
    /// a listing of it (`PushListing`).
    func smartPush(_ moves: [RefMove], operation: String, shown: inout [String: GitOID]?) throws(LedgerError) -> [String: RefUpdate] {
        guard !moves.isEmpty else { return [:] }
        return try withConnection(GIT_DIRECTION_PUSH, operation: operation) {
            (remote, state) throws(LedgerError) -> [String: RefUpdate] in
            let advertised = advertisedRefs(remote, prefix: nil)
            shown = advertised
            var outcomes: [String: RefUpdate] = [:]
            var sources: [String] = []
            defer { for source in sources { git_reference_remove(repository.pointer, source) } }
            var refspecs: [String] = []
            var pushed: [String] = []
            for move in moves {
                // libgit2 computes the old value it sends from this advertisement, and
                // would refuse a non-fast-forward itself; checking first gives a clear reason.
                let actual = advertised[move.name]
                if actual != move.old {
                    outcomes[move.name] = .rejected(reason: Self.mismatch(move.name, expected: move.old, actual: actual))
                    continue
                }
                var source = ""
                if let new = move.new {
                    source = Self.pushRefPrefix + Self.uniqueSuffix()
                    var oid = new.raw
                    var reference: OpaquePointer?
                    let code = git_reference_create(&reference, repository.pointer, source, &oid, 1, "dgrid: push source")
                    guard code == 0 else {
                        throw failure(code, kind: .mirror, operation: operation, hint: "check the mirror directory")
                    }
                    git_reference_free(reference)
                    sources.append(source)
                }
                // A leading "+" only for a history-replacing move, and it waives only
                // libgit2's own fast-forward check: the old value sent is still the
                // advertised one checked above, and receive-pack refuses the update
                // under its ref lock if the ref moved since. Never for anything else:
                // the server must be free to refuse.
                refspecs.append("\(move.replacesHistory && move.new != nil ? "+" : "")\(source):\(move.name)")
                pushed.append(move.name)
            }
            guard !refspecs.isEmpty else { return outcomes }

            var options = git_push_options()
            git_push_options_init(&options, UInt32(GIT_PUSH_OPTIONS_VERSION))
            options.callbacks = state.callbacks()
            options.pb_parallelism = 1
            options.follow_redirects = GIT_REMOTE_REDIRECT_NONE
            let specs = CStringArray(refspecs)
            let code = specs.withStrArray { git_remote_upload(remote, $0, &options) }
            if code == GIT_ENONFASTFORWARD.rawValue {
                for name in pushed { outcomes[name] = .rejected(reason: "\(name) is not a fast-forward of the remote's value") }
                return outcomes
            }
            if code < 0 { throw remoteFailure(code, state: state, operation: operation) }
            // The push call's result says nothing about our refs (it returns 0 for a
            // refused one); only the per-ref status does. No status at all is not a win.
            for name in pushed {
                if let status = state.pushStatus[name] {
                    outcomes[name] = status.map { .rejected(reason: "the server refused \(name): \($0)") } ?? .applied
                } else {
                    outcomes[name] = .rejected(reason: "the server reported no status for \(name)")
                }
            }
            return outcomes
        }
    }

    static func mismatch(_ name: String, expected: GitOID?, actual: GitOID?) -> String {
        switch (expected, actual) {
        case (nil, let actual?): "\(name) already exists (at \(actual))"
        case (_?, nil): "\(name) does not exist"
        case (let expected?, let actual?): "\(name) is at \(actual), not \(expected)"
        case (nil, nil): "\(name) changed"
        }
    }

    static func uniqueSuffix() -> String {
        var generator = SystemRandomNumberGenerator()
        let high = generator.next() as UInt64, low = generator.next() as UInt64
        return String(high, radix: 16) + String(low, radix: 16)
    }
}
