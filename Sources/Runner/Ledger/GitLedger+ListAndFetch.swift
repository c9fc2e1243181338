import CGit2

extension GitLedger {
    /// Lists the remote's refs and fetches, on the same connection, the refs `choose` picks
    /// from that listing (main when its tip moved): one request to the server where
    /// `remoteRefs` and `fetch` make two. At a hundred workers polling a grid whose main
    /// moves with every fold, that halves the reads the fleet makes (docs/ARCHITECTURE.md §11).
    /// A local grid (a path) lists and fetches as two steps: it has no connection to share.
    /// The picked refs are kept in the mirror, as `fetch` keeps them.
    public func remoteRefs(fetching choose: ([String: GitOID]) -> [String]) throws(LedgerError) -> [String: GitOID] {
        if case .local = location {
            let refs = try remoteRefs()
            let picked = choose(refs)
            if !picked.isEmpty { try fetch(picked) }
            return refs
        }
        return try observed(.list) { () throws(LedgerError) -> [String: GitOID] in
            try lock.run { () throws(LedgerError) -> [String: GitOID] in
                try repairingMirror { () throws(LedgerError) -> [String: GitOID] in
                    // The fetch's deadline: the listing alone may be followed by a pack.
                    try withDeadline(.fetch, operation: "list remote refs and fetch") { () throws(LedgerError) -> [String: GitOID] in
                        try retryingVanishedRefs { () throws(LedgerError) -> [String: GitOID] in
                            try listAndFetchConnected(choose)
                        }
                    }
                }
            }
        }
    }

    private func listAndFetchConnected(_ choose: ([String: GitOID]) -> [String]) throws(LedgerError) -> [String: GitOID] {
        var picked: [String] = []
        let refs = try withConnection(GIT_DIRECTION_FETCH, operation: "list remote refs") {
            (remote, state) throws(LedgerError) -> [String: GitOID] in
            let refs = advertisedRefs(remote, prefix: nil)
            picked = choose(refs).filter { refs[$0] != nil }
            guard !picked.isEmpty else { return refs }
            for name in picked { try validateRefName(name, operation: "fetch") }
            let operation = Self.fetchOperation(picked)
            let tipsBefore = branchTips(picked)
            var options = git_fetch_options()
            git_fetch_options_init(&options, UInt32(GIT_FETCH_OPTIONS_VERSION))
            options.callbacks = state.callbacks()
            options.prune = GIT_FETCH_NO_PRUNE
            options.update_fetchhead = 0
            options.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE
            options.follow_redirects = GIT_REMOTE_REDIRECT_NONE
            // "+": the mirror is a cache of the remote, which is always right.
            let refspecs = CStringArray(picked.map { "+\($0):\($0)" })
            // Connected already: libgit2 negotiates and downloads on this connection.
            var code = refspecs.withStrArray { git_remote_download(remote, $0, &options) }
            if code < 0 { throw remoteFailure(code, state: state, operation: operation) }
            var callbacks = state.callbacks()
            code = git_remote_update_tips(remote, &callbacks, 0, GIT_REMOTE_DOWNLOAD_TAGS_NONE, "dgrid: fetch")
            if code < 0 { throw remoteFailure(code, state: state, operation: operation) }
            maintainMirror(afterFetchFrom: tipsBefore)
            return refs
        }
        return refs
    }
}
