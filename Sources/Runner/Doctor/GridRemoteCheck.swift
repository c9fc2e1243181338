import Sandbox

/// `grid.remote`: the grid repository answers with the credentials the worker
/// would use (flags, `DGRID_REPO_URL`, `GIT_TOKEN` or a token file, the SSH key
/// or agent, known_hosts: `GridSettings`), it is a grid (it has main), and
/// this host may push to it (`GitLedger.checkPushAccess`: a push connection
/// opened and closed, nothing sent). Read-only otherwise: one listing of the
/// refs, into the worker's own mirror. A plain function, so the worker's
/// periodic self-checks can call it too.
public enum GridRemoteCheck {
    /// What the check found, and the open ledger and listing for the clock check.
    public struct Outcome {
        public let check: HostCheck
        public let ledger: GitLedger?
        public let refs: [String: GitOID]?
    }

    public static func run(settings: GridSettings) -> Outcome {
        let location: RemoteLocation
        do {
            location = try RemoteLocation.parse(settings.repository)
        } catch {
            return Outcome(check: .fail(.gridRemote, error.description, fix: error.hint), ledger: nil, refs: nil)
        }
        let mirror: String
        do {
            mirror = try settings.mirrorPath()
        } catch {
            return Outcome(check: failure(error), ledger: nil, refs: nil)
        }
        let ledger: GitLedger
        do {
            ledger = try GitLedger(remote: settings.repository, mirrorPath: mirror, credentials: settings.credentials,
                                   knownHosts: settings.knownHostsPath.map { SSHKnownHosts(path: $0) }, deadlines: settings.gitDeadlines)
        } catch {
            return Outcome(check: failure(error), ledger: nil, refs: nil)
        }
        let refs: [String: GitOID]
        do {
            refs = try ledger.remoteRefs()
        } catch {
            return Outcome(check: .fail(.gridRemote, "cannot list the grid's refs: \(error.description)",
                                        fix: error.hint.isEmpty ? "check the URL, the network and the credentials" : error.hint),
                           ledger: nil, refs: nil)
        }
        let shown = Redaction.redact(settings.repository, secrets: settings.credentials.secrets)
        let how = "\(location.transport.rawValue) with \(settings.credentials.kindDescription)"
        guard let main = refs[GridConnection.mainRef] else {
            return Outcome(check: .fail(.gridRemote, "\(shown) answers (\(how)) but has no main branch: it is not a grid yet",
                                        fix: "dgrid init --repo \(shown)"),
                           ledger: ledger, refs: refs)
        }
        do {
            try ledger.checkPushAccess()
        } catch {
            return Outcome(check: .fail(.gridRemote, "\(shown) can be read (\(how)) but not pushed to: \(error.message)",
                                        fix: "give these credentials write access (a token or key allowed to push; git daemon --enable=receive-pack)"),
                           ledger: ledger, refs: refs)
        }
        let nodes = refs.keys.filter { $0.hasPrefix(GridConnection.nodesPrefix) }.count
        return Outcome(check: .pass(.gridRemote, "\(shown) (\(how)): \(refs.count) refs, main at \(String(main.hex.prefix(12))), \(nodes) node record\(nodes == 1 ? "" : "s"), push allowed"),
                       ledger: ledger, refs: refs)
    }

    private static func failure(_ error: GridError) -> HostCheck {
        if case .ledger(let ledgerError) = error {
            return .fail(.gridRemote, ledgerError.description, fix: ledgerError.hint.isEmpty ? "check the grid URL" : ledgerError.hint)
        }
        return .fail(.gridRemote, "\(error)", fix: "fix state_directory first")
    }

    private static func failure(_ error: LedgerError) -> HostCheck {
        .fail(.gridRemote, error.description, fix: error.hint.isEmpty ? "check the grid URL" : error.hint)
    }
}
