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
        // Under the listing's deadline, not the fetch's: a server that stalls must not hold a
        // poll for the five minutes a large fetch may take. When the deadline passes after the
        // listing arrived (a big main on a slow link), the refs it picked are fetched on their
        // own under the fetch's deadline: the listing is kept, and nothing waits longer than before.
        var listing: [String: GitOID]?
        var picked: [String] = []
        do throws(LedgerError) {
            return try observed(.list, about: "and fetch \(picked.joined(separator: " "))") { () throws(LedgerError) -> [String: GitOID] in
                try lock.run { () throws(LedgerError) -> [String: GitOID] in
                    try repairingMirror { () throws(LedgerError) -> [String: GitOID] in
                        try withDeadline(.list, operation: "list remote refs and fetch") { () throws(LedgerError) -> [String: GitOID] in
                            try retryingVanishedRefs { () throws(LedgerError) -> [String: GitOID] in
                                try listAndFetchConnected(choose, listing: &listing, picked: &picked)
                            }
                        }
                    }
                }
            }
        } catch where error.deadlineExceeded == .list && listing != nil && !picked.isEmpty {
            try fetch(picked)
            return listing ?? [:]
        }
    }

    /// Lists, then fetches what `choose` picked on the same connection. `listing` and `picked`
    /// are set once the listing has arrived, so a caller whose deadline passed during the
    /// download knows what to fetch on its own.
    private func listAndFetchConnected(_ choose: ([String: GitOID]) -> [String], listing: inout [String: GitOID]?,
                                       picked: inout [String]) throws(LedgerError) -> [String: GitOID] {
        listing = nil
        picked = []
        return try withConnection(GIT_DIRECTION_FETCH, operation: "list remote refs") {
            (remote, state) throws(LedgerError) -> [String: GitOID] in
            let refs = advertisedRefs(remote, prefix: nil)
            let names = choose(refs).filter { refs[$0] != nil }
            for name in names { try validateRefName(name, operation: "fetch") }
            listing = refs
            picked = names
            guard !names.isEmpty else { return refs }
            let operation = Self.fetchOperation(names)
            let tipsBefore = branchTips(names)
            var options = Self.fetchOptions(state)
            let refspecs = Self.fetchRefspecs(names, keepRefs: true)
            // Connected already: libgit2 negotiates and downloads on this connection.
            var code = refspecs.withStrArray { git_remote_download(remote, $0, &options) }
            if code < 0 { throw remoteFailure(code, state: state, operation: operation) }
            var callbacks = state.callbacks()
            code = git_remote_update_tips(remote, &callbacks, 0, GIT_REMOTE_DOWNLOAD_TAGS_NONE, "dgrid: fetch")
            if code < 0 { throw remoteFailure(code, state: state, operation: operation) }
            maintainMirror(afterFetchFrom: tipsBefore)
            return refs
        }
    }
}
