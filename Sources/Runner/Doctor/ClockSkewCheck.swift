import CShims
import Foundation
import Sandbox

/// `grid.clock`: whether this host's clock agrees with the grid's.
///
/// Leases are wall-clock times written by one host and read by others (a
/// claim's `lease_until`, the fold lease, docs/ARCHITECTURE.md §7): a worker
/// whose clock runs ahead by Δ sees another's live claim lapse Δ early, and
/// takes over a task still running once Δ > lease − heartbeat (60 s with the
/// defaults). Two hosts can be off in opposite directions, so the check fails
/// past half of that and warns past 2 s (NTP keeps hosts within milliseconds).
///
/// How the skew is measured — by harmless reads only:
/// - **http(s)**: every HTTP answer carries the server's `Date` (RFC 9110,
///   1-second resolution). One GET of the ref advertisement, sent without
///   credentials (a 401 carries a Date as well) and read by `dgrid-registry`
///   (this binary links no HTTP stack), timed on this host's clock before and
///   after: offset = (Date + 0.5 s) − midpoint, uncertain by 0.5 s plus half
///   the round trip. Only what exceeds the uncertainty counts.
/// - **git:// and ssh://**: neither protocol carries the server's time. A
///   commit dgrid pushes is dated by this host, so pushing a probe ref would
///   measure nothing (and write to the grid); the server's own clock is
///   therefore not measured, and the check warns that it was not.
/// - **the fleet, every transport**: other workers' heartbeats
///   (`refs/dgrid/nodes/*`, `last_heartbeat` written by their own clocks when
///   they beat). A heartbeat dated after this host's now proves a skew of at
///   least that much between the two hosts — the one skew leases care about.
///   An old heartbeat proves nothing (its node may just be gone), so this
///   evidence is one-sided and never makes the check pass on its own.
/// - **file://** and a loopback host: the server is this machine; no skew.
/// - **this host's NTP state** (adjtimex: the kernel's "unsynchronised" flag):
///   a clock nothing disciplines drifts, so it warns even when it agrees now.
public enum ClockSkewCheck {
    public struct Thresholds: Sendable, Equatable {
        public var warnSeconds: Double = 2
        public var failSeconds: Double

        /// `failSeconds` = half of (lease − heartbeat), at least 2 s.
        public init(leaseSeconds: Double, heartbeatSeconds: Double) {
            failSeconds = max(2, (leaseSeconds - heartbeatSeconds) / 2)
        }
    }

    /// The grid server's clock as measured.
    public enum ServerClock: Sendable, Equatable {
        /// server − this host, in seconds, and how uncertain that is.
        case measured(offset: Double, uncertainty: Double, source: String)
        /// The server is this machine.
        case sameHost(String)
        /// The transport carries no time.
        case unmeasurable(String)
        /// A measurement was tried and failed.
        case failed(String)
    }

    /// A node whose last heartbeat is dated after this host's now.
    public struct NodeAhead: Sendable, Equatable {
        public let node: String
        public let seconds: Double
    }

    /// The kernel's view of this host's clock discipline.
    public enum Synchronisation: Sendable, Equatable {
        case synchronised(maxErrorSeconds: Double)
        case unsynchronised
        case unknown(String)

        /// adjtimex(2), read only.
        public static func current() -> Synchronisation {
            var maxError = 0, estimated = 0
            let state = dgrid_clock_state(&maxError, &estimated)
            if state < 0 { return .unknown("adjtimex: \(errnoText(errno))") }
            // TIME_ERROR (5): STA_UNSYNC is set, nothing keeps the clock disciplined.
            return state == 5 ? .unsynchronised : .synchronised(maxErrorSeconds: Double(maxError) / 1e6)
        }
    }

    public struct Evidence: Sendable, Equatable {
        public var server: ServerClock
        /// Other nodes' heartbeats read, and those dated ahead of this host.
        public var nodesCompared = 0
        public var ahead: [NodeAhead] = []
        public var synchronisation: Synchronisation

        public init(server: ServerClock, nodesCompared: Int = 0, ahead: [NodeAhead] = [], synchronisation: Synchronisation) {
            self.server = server
            self.nodesCompared = nodesCompared
            self.ahead = ahead
            self.synchronisation = synchronisation
        }
    }

    public static func check(_ evidence: Evidence, thresholds: Thresholds) -> HostCheck {
        let fix = "synchronise every worker host's clock (chrony or systemd-timesyncd, the same NTP servers); leases compare clocks across hosts"
        var certain: [(seconds: Double, said: String)] = []
        switch evidence.server {
        case .measured(let offset, let uncertainty, let source):
            let beyond = abs(offset) - uncertainty
            if beyond > 0 {
                certain.append((beyond, "the server's clock (\(source)) is \(seconds(abs(offset))) \(offset > 0 ? "ahead of" : "behind") this host's (±\(seconds(uncertainty)))"))
            }
        case .sameHost, .unmeasurable, .failed:
            break
        }
        for node in evidence.ahead {
            certain.append((node.seconds, "node \(UntrustedText.shown(node.node, limit: 64))'s last heartbeat is dated \(seconds(node.seconds)) ahead of this host's clock (its clock is ahead, or this host's behind)"))
        }
        let limits = "warn over \(seconds(thresholds.warnSeconds)), fail over \(seconds(thresholds.failSeconds)): half of lease − heartbeat"
        if let worst = certain.max(by: { $0.seconds < $1.seconds }) {
            if worst.seconds > thresholds.failSeconds {
                return .fail(.gridClock, "\(worst.said): other workers would take over live tasks (\(limits))", fix: fix)
            }
            if worst.seconds > thresholds.warnSeconds {
                return .warn(.gridClock, "\(worst.said) (\(limits))", fix: fix)
            }
        }
        let fleet = evidence.nodesCompared == 0 ? "no other node's heartbeat to compare"
            : "\(evidence.nodesCompared) other node\(evidence.nodesCompared == 1 ? "'s heartbeat is" : "s' heartbeats are") not dated ahead of this clock"
        let measured: String
        switch evidence.server {
        case .measured(let offset, let uncertainty, let source):
            measured = "the server's clock (\(source)) is within \(seconds(abs(offset))) ±\(seconds(uncertainty)) of this host's; \(fleet)"
        case .sameHost(let why):
            measured = "\(why); \(fleet)"
        case .unmeasurable(let why):
            return .warn(.gridClock, "the server's clock cannot be measured: \(why); \(fleet)",
                         fix: "run NTP on every worker host (chrony or systemd-timesyncd); an http(s) grid URL lets dgrid doctor measure the server's clock")
        case .failed(let why):
            return .warn(.gridClock, "the server's clock was not measured: \(why); \(fleet)", fix: "see grid.remote; " + fix)
        }
        switch evidence.synchronisation {
        case .unsynchronised:
            return .warn(.gridClock, "\(measured), but the kernel says this clock is not synchronised (adjtimex: TIME_ERROR): it drifts",
                         fix: "run chrony or systemd-timesyncd on this host")
        case .unknown(let why):
            return .warn(.gridClock, "\(measured); the NTP state is unknown (\(why))", fix: "run chrony or systemd-timesyncd on this host")
        case .synchronised(let maxError):
            return .pass(.gridClock, "\(measured); NTP-synchronised (maximum error \(seconds(maxError)))")
        }
    }

    static func seconds(_ value: Double) -> String {
        value >= 10 ? "\(Int(value.rounded())) s" : "\(Double(Int((value * 10).rounded())) / 10) s"
    }
}

/// Gathers `ClockSkewCheck.Evidence` from the grid (see there for why each reading means what it means).
public enum ClockEvidence {
    public static func gather(settings: GridSettings, ledger: GitLedger, refs: [String: GitOID]) -> ClockSkewCheck.Evidence {
        var evidence = ClockSkewCheck.Evidence(server: server(settings: settings), synchronisation: .current())
        let nodes = refs.filter { $0.key.hasPrefix(GridConnection.nodesPrefix) && $0.key != GridConnection.nodesPrefix + settings.nodeID }
        guard !nodes.isEmpty else { return evidence }
        do {
            try ledger.fetch(Array(nodes.keys), keepRefs: false)
        } catch {
            return evidence
        }
        // Read after the fetch: a heartbeat cannot be dated after a now taken later than it was listed.
        let now = Date()
        for (_, commit) in nodes {
            guard let files = try? ledger.tree(of: commit), let blob = files["node.json"],
                  let bytes = try? ledger.blob(blob, limit: 64 * 1024), let record = NodeRecord.parse(bytes),
                  let beat = ISOTime.parse(record.lastHeartbeat) else { continue }
            evidence.nodesCompared += 1
            let ahead = beat.timeIntervalSince(now)
            if ahead > 0 { evidence.ahead.append(.init(node: record.nodeID, seconds: ahead)) }
        }
        return evidence
    }

    static func server(settings: GridSettings) -> ClockSkewCheck.ServerClock {
        let location: RemoteLocation
        do {
            location = try RemoteLocation.parse(settings.repository)
        } catch {
            return .failed(error.message)
        }
        switch location {
        case .local:
            return .sameHost("the grid is a repository on this machine: one clock")
        case .git(let url):
            if isLoopback(host(ofURL: url)) { return .sameHost("the git:// server is this machine (loopback): one clock") }
            return .unmeasurable("git:// carries no time, and a commit pushed from here is dated by this host")
        case .ssh(let endpoint):
            if isLoopback(endpoint.host) { return .sameHost("the ssh:// server is this machine (loopback): one clock") }
            return .unmeasurable("SSH and Git's protocol carry no time, and a commit pushed from here is dated by this host")
        case .http(let url):
            let target = (url.hasSuffix("/") ? String(url.dropLast()) : url) + "/info/refs?service=git-upload-pack"
            switch RegistryHelper(settings: settings).serverDate(target) {
            case .failure(let failure):
                return .failed("reading the server's Date: \(failure.message)")
            case .success(let reading):
                guard let text = reading.date else { return .failed("the server answered HTTP \(reading.status) without a Date header") }
                guard let date = HTTPDate.parse(text) else {
                    return .failed("the server's Date header \(UntrustedText.quoted(text)) is not an HTTP date")
                }
                let middle = (reading.sentAt + reading.receivedAt) / 2
                let roundTrip = max(0, reading.receivedAt - reading.sentAt)
                // Date is truncated to the second: the server's time was in [Date, Date + 1).
                return .measured(offset: date.timeIntervalSince1970 + 0.5 - middle, uncertainty: 0.5 + roundTrip / 2,
                                 source: "HTTP Date, HTTP \(reading.status)")
            }
        }
    }

    /// The host of `scheme://host[:port]/path` (brackets kept off an IPv6 literal).
    static func host(ofURL url: String) -> String {
        guard let start = url.range(of: "://")?.upperBound else { return "" }
        let authority = url[start...].prefix { $0 != "/" }
        if authority.hasPrefix("["), let close = authority.firstIndex(of: "]") {
            return String(authority[authority.index(after: authority.startIndex)..<close])
        }
        return String(authority.prefix { $0 != ":" })
    }

    static func isLoopback(_ host: String) -> Bool {
        let lower = host.lowercased()
        return lower == "localhost" || lower == "::1" || lower.hasPrefix("127.")
    }
}

/// HTTP's date (RFC 9110 §5.6.7, IMF-fixdate): `Sun, 06 Nov 1994 08:49:37 GMT`.
/// The obsolete forms a server must no longer send are not read.
public enum HTTPDate {
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    public static func parse(_ text: String) -> Date? {
        let parts = text.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 6, parts[0].count == 4, parts[0].hasSuffix(","), parts[5] == "GMT",
              parts[1].count == 2, let day = Int(parts[1]), let month = months.firstIndex(of: String(parts[2])),
              parts[3].count == 4, let year = Int(parts[3]) else { return nil }
        let clock = parts[4].split(separator: ":", omittingEmptySubsequences: false)
        guard clock.count == 3, clock.allSatisfy({ $0.count == 2 }), let hour = Int(clock[0]), let minute = Int(clock[1]),
              let second = Int(clock[2]), hour < 24, minute < 60, second < 61 else { return nil }
        let iso = String(format: "%04d-%02d-%02dT%02d:%02d:%02dZ", year, month + 1, day, hour, minute, min(second, 59))
        return ISOTime.parse(iso)
    }
}
