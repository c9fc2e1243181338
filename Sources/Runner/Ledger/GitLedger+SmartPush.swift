import CGit2

/// Ref moves over git://, http(s):// and ssh://: one connection, the advertised
/// value checked against what the caller expects, then a push that is never forced.
/// The server's receive-pack checks the old value under its ref lock, so a ref that
/// moved after we connected is refused there (DESIGN §6).
extension GitLedger {
    /// Where pushes take their source from in the mirror: one unique name per push,
    /// deleted afterwards, so concurrent pushes from one mirror never share a ref.
    static let pushRefPrefix = "refs/dgrid-push/"

    func smartPush(_ name: String, from old: GitOID?, to new: GitOID?,
                   operation: String) throws(LedgerError) -> RefUpdate {
        try withConnection(GIT_DIRECTION_PUSH, operation: operation) {
            (remote, state) throws(LedgerError) -> RefUpdate in
            let advertised = advertisedRefs(remote, prefix: name)[name]
            // libgit2 computes the old value it sends from this advertisement, and
            // would refuse a non-fast-forward itself; checking first gives a clear reason.
            if advertised != old {
                return .rejected(reason: Self.mismatch(name, expected: old, actual: advertised))
            }
            var source = ""
            if let new {
                source = Self.pushRefPrefix + Self.uniqueSuffix()
                var oid = new.raw
                var reference: OpaquePointer?
                let code = git_reference_create(&reference, repository.pointer, source, &oid, 1, "dgrid: push source")
                guard code == 0 else {
                    throw failure(code, kind: .mirror, operation: operation, hint: "check the mirror directory")
                }
                git_reference_free(reference)
            }
            defer { if !source.isEmpty { git_reference_remove(repository.pointer, source) } }

            var options = git_push_options()
            git_push_options_init(&options, UInt32(GIT_PUSH_OPTIONS_VERSION))
            options.callbacks = state.callbacks()
            options.pb_parallelism = 1
            options.follow_redirects = GIT_REMOTE_REDIRECT_NONE
            // Never a leading "+": the server must be free to refuse.
            let refspecs = CStringArray(["\(source):\(name)"])
            let code = refspecs.withStrArray { git_remote_upload(remote, $0, &options) }
            if code == GIT_ENONFASTFORWARD.rawValue {
                return .rejected(reason: "\(name) is not a fast-forward of the remote's value")
            }
            if code < 0 { throw remoteFailure(code, state: state, operation: operation) }
            // The push call's result says nothing about our ref (it returns 0 for a
            // refused one); only the per-ref status does. No status at all is not a win.
            guard let status = state.pushStatus[name] else {
                return .rejected(reason: "the server reported no status for \(name)")
            }
            if let reason = status { return .rejected(reason: "the server refused \(name): \(reason)") }
            return .applied
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
