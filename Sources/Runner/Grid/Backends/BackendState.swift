/// One backend of the grid as `dgrid status` shows it (docs/ARCHITECTURE.md §11, "Several
/// backends"): which one is the authority, its circuit, and the main it serves — two
/// backends showing different mains are not in step yet (the fold-lease holder reconciles them).
public struct BackendState: Sendable, Codable, Equatable {
    /// The URL, credentials removed.
    public var repository: String
    public var authority: Bool
    /// `GitCircuitBreaker.State`'s word: closed, open, half_open.
    public var circuit: String
    /// main's tip there; nil when it has none or could not be read.
    public var mainTip: String?
    /// Why it could not be read, when it could not.
    public var error: String?

    enum CodingKeys: String, CodingKey {
        case repository, authority, circuit, mainTip = "main", error
    }
}

extension GridConnection {
    /// Every backend's state; the authority's main is the one just listed (`authorityMain`),
    /// each other backend costs one listing of main.
    func backendStates(authorityMain: GitOID?) -> [BackendState] {
        guard backends.count > 1 else { return [] }
        let chosen = authority.index
        return backends.map { backend in
            var state = BackendState(repository: backend.shownRepository, authority: backend.index == chosen,
                                     circuit: backend.circuit.snapshot().state.rawValue)
            if backend.index == chosen {
                state.mainTip = authorityMain?.hex
                return state
            }
            do {
                state.mainTip = try withLedger(of: backend) { (ledger) throws(LedgerError) in
                    try ledger.remoteRefs(prefix: GridConnection.mainRef)[GridConnection.mainRef]
                }?.hex
            } catch {
                state.error = "\(error)"
            }
            state.circuit = backend.circuit.snapshot().state.rawValue
            return state
        }
    }
}
