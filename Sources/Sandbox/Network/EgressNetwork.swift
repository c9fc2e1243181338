import Glibc
import SandboxSupport

/// A sandbox's way out (docs/ARCHITECTURE.md §9, docs/THREATS.md T16): a veth pair,
/// `dgv<N>` on the host and `eth0` in the sandbox's network namespace, a /30
/// of `subnet`, and an nftables table of its own, `inet dgrid_s<N>`, in the
/// host's namespace, where the task's user namespace gives it no power: what
/// leaves `dgv<N>` is forwarded (masqueraded) only to the grant's destinations;
/// everything else is counted, logged (`dgrid-egress dgv<N>`) and dropped, and
/// nothing from it reaches the host itself. Root only: a rootless worker
/// cannot create links or tables in the host's namespace (it would need
/// pasta or slirp4netns, which carry the traffic in user space).
public final class EgressNetwork {
    /// 10.203.0.0/16: 16,384 sandboxes' /30s. Outside the ranges test hosts and
    /// most private networks use; the masquerade hides it from destinations.
    static let subnet: UInt32 = 0x0ACB_0000
    static let slots = 16_384
    static let ip = "/usr/sbin/ip", nft = "/usr/sbin/nft", nsenter = "/usr/bin/nsenter"

    let index: Int
    var hostInterface: String { "dgv\(index)" }
    var table: String { "dgrid_s\(index)" }

    private init(index: Int) { self.index = index }

    /// Wires the sandbox whose pid 1 is `pid` (waiting at its sync point) to the grant.
    static func attach(pid: pid_t, grant: EgressGrant) throws(SandboxError) -> EgressNetwork {
        do {
            try enableForwarding()
            let network = try allocate(pid: pid)
            do {
                try network.configure(pid: pid, grant: grant)
            } catch {
                network.detach()
                throw error
            }
            return network
        } catch {
            throw .egress("\(error)")
        }
    }

    /// Blocked packets, then the table and link gone. Safe to call twice.
    @discardableResult
    func detach() -> UInt64 {
        let listed = (try? NetworkTool.run([Self.nft, "list", "counter", "inet", table, "blocked"])) ?? ""
        _ = try? NetworkTool.run([Self.nft, "delete", "table", "inet", table])
        _ = try? NetworkTool.run([Self.ip, "link", "del", hostInterface])
        return Self.packets(in: listed)
    }

    /// The `packets N` of `nft list counter`'s output.
    static func packets(in listing: String) -> UInt64 {
        let words = listing.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" })
        guard let at = words.firstIndex(of: "packets"), at + 1 < words.count else { return 0 }
        return UInt64(words[at + 1]) ?? 0
    }

    private static func enableForwarding() throws(NetworkTool.Failure) {
        let path = "/proc/sys/net/ipv4/ip_forward"
        let fd = open(path, O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { throw NetworkTool.Failure(command: path, detail: errnoText(errno)) }
        defer { close(fd) }
        var current: UInt8 = 0
        guard read(fd, &current, 1) == 1 else { throw NetworkTool.Failure(command: path, detail: errnoText(errno)) }
        if current == UInt8(ascii: "1") { return }
        var one = UInt8(ascii: "1")
        guard pwrite(fd, &one, 1, 0) == 1 else { throw NetworkTool.Failure(command: path, detail: errnoText(errno)) }
    }

    /// A free slot: the host end's name is the lock (creating a link that exists fails).
    private static func allocate(pid: pid_t) throws(NetworkTool.Failure) -> EgressNetwork {
        let start = Int.random(in: 0..<slots)
        var lastError: NetworkTool.Failure?
        for offset in 0..<slots {
            let index = (start + offset) % slots
            if access("/sys/class/net/dgv\(index)", F_OK) == 0 { continue }
            do {
                try NetworkTool.run([ip, "link", "add", "dgv\(index)", "type", "veth", "peer", "name", "eth0", "netns", "\(pid)"])
                return EgressNetwork(index: index)
            } catch {
                lastError = error
                if !error.detail.contains("File exists") { throw error }
            }
        }
        throw lastError ?? NetworkTool.Failure(command: "ip link add", detail: "all \(slots) egress slots are in use")
    }

    private func configure(pid: pid_t, grant: EgressGrant) throws(NetworkTool.Failure) {
        let base = Self.subnet + UInt32(index) * 4
        let host = EgressRule.dotted(base + 1), inside = EgressRule.dotted(base + 2)
        try NetworkTool.run([Self.ip, "-batch", "-"], input: "addr add \(host)/30 dev \(hostInterface)\nlink set \(hostInterface) up\n")
        try NetworkTool.run([Self.nsenter, "--target", "\(pid)", "--net", Self.ip, "-batch", "-"],
                            input: "addr add \(inside)/30 dev eth0\nlink set eth0 up\nlink set lo up\nroute add default via \(host)\n")
        try NetworkTool.run([Self.nft, "-f", "-"], input: ruleset(grant))
    }

    /// The sandbox's table: its own hooks, so one sandbox's rules never touch another's.
    func ruleset(_ grant: EgressGrant) -> String {
        let interface = "\"\(hostInterface)\""
        let allowed = grant.allRules.map { "        iifname \(interface) \($0.nftRule)" }.joined(separator: "\n")
        return """
        table inet \(table) {
            counter blocked { }
            chain forward {
                type filter hook forward priority -10; policy accept;
                iifname \(interface) ct state established,related accept
        \(allowed)
                iifname \(interface) counter name "blocked" log prefix "dgrid-egress \(hostInterface) " drop
                oifname \(interface) ct state established,related accept
                oifname \(interface) drop
            }
            chain input {
                type filter hook input priority -10; policy accept;
                iifname \(interface) ct state established,related accept
                iifname \(interface) counter name "blocked" log prefix "dgrid-egress \(hostInterface) " drop
            }
            chain postrouting {
                type nat hook postrouting priority 100; policy accept;
                iifname \(interface) masquerade
            }
        }

        """
    }

    /// Tables and links a crashed worker left behind: a `dgrid_s<N>` table whose
    /// `dgv<N>` is gone (its sandbox's namespace died with it).
    public static func removeStale() {
        guard access(nft, X_OK) == 0, let listing = try? NetworkTool.run([nft, "list", "tables"]) else { return }
        for line in listing.split(separator: "\n") {
            let words = line.split(separator: " ")
            guard words.count == 3, words[1] == "inet", words[2].hasPrefix("dgrid_s"), let index = Int(words[2].dropFirst("dgrid_s".count)),
                  access("/sys/class/net/dgv\(index)", F_OK) != 0 else { continue }
            _ = try? NetworkTool.run([nft, "delete", "table", "inet", String(words[2])])
        }
    }
}
