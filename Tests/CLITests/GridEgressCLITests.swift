import Foundation
import Testing
import TestSupport

/// Egress by policy (docs/ARCHITECTURE.md §9, docs/THREATS.md T16), through a real
/// worker, the real kernel and nftables: two test hosts in network namespaces
/// this test makes (10.77.1.2 serving ports 8080 and 8081, 10.77.2.2 serving
/// 8080; private test addresses, never a real network). A task whose principal
/// may reach 10.77.1.2:8080/tcp gets exactly that: the second port and the
/// second host are dropped, counted in its record and audited. A task without
/// a grant sees only loopback. Nothing of the wiring outlives the tasks.
@Suite(.system, .serialized)
struct GridEgressCLITests {
    /// A network namespace with one address, reached from the host through a veth.
    final class TestHost {
        let name: String, link: String
        var servers: [Process] = []

        init(_ tag: String, subnet: Int, ports: [Int]) throws {
            name = "dgt\(getpid() % 100_000)\(tag)"
            link = "th\(getpid() % 100_000)\(tag)"
            for args in [["netns", "add", name], ["link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", name],
                         ["addr", "add", "10.77.\(subnet).1/24", "dev", link], ["link", "set", link, "up"],
                         ["-n", name, "addr", "add", "10.77.\(subnet).2/24", "dev", "eth0"], ["-n", name, "link", "set", "eth0", "up"],
                         ["-n", name, "link", "set", "lo", "up"]] {
                try Shell.check(["ip"] + args)
            }
            let root = try TempDir.make(prefix: "dgrid-egress-www").path
            try "hello from 10.77.\(subnet).2\n".write(toFile: root + "/ok.txt", atomically: true, encoding: .utf8)
            for port in ports {
                let server = Process()
                server.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
                server.arguments = ["netns", "exec", name, "python3", "-m", "http.server", "\(port)", "--bind", "10.77.\(subnet).2", "--directory", root]
                server.standardOutput = FileHandle.nullDevice
                server.standardError = FileHandle.nullDevice
                try server.run()
                servers.append(server)
            }
            // Up when the host itself can fetch from each port.
            for port in ports {
                _ = GridFaultCLITests.waitUntil(10) {
                    (try? Shell.run(["ip", "netns", "exec", name, "python3", "-c",
                                     "import urllib.request; urllib.request.urlopen('http://10.77.\(subnet).2:\(port)/ok.txt', timeout=1)"]).status) == 0
                }
            }
        }

        deinit {
            for server in servers where server.isRunning { kill(server.processIdentifier, SIGKILL); server.waitUntilExit() }
            _ = try? Shell.run(["ip", "link", "del", link])
            _ = try? Shell.run(["ip", "netns", "del", name])
        }
    }

    @Test func aGrantReachesExactlyItsDestinationsAndNothingElse() throws {
        let forwarding = try String(contentsOfFile: "/proc/sys/net/ipv4/ip_forward", encoding: .utf8)
        defer { try? forwarding.write(toFile: "/proc/sys/net/ipv4/ip_forward", atomically: false, encoding: .utf8) }
        let first = try TestHost("a", subnet: 1, ports: [8080, 8081])
        let second = try TestHost("b", subnet: 2, ports: [8080])
        defer { withExtendedLifetime((first, second)) {} }

        let keys = try GridQuotaCLITests.Principals()
        let home = try keys.home(policy: """
            [principals."alice@example.com"]
            egress = ["10.77.1.2:8080/tcp"]
            """)
        let repo = try GridFixture.bareRepository()
        let url = "file://" + repo
        #expect(try home.dgrid("init", "--repo", url).status == 0)
        let dir = try TempDir.make(prefix: "dgrid-egress").path
        // busybox nc with a raw HTTP request (its static wget needs NSS files the image lacks).
        let probe = ["10.77.1.2 8080", "10.77.1.2 8081", "10.77.2.2 8080"].enumerated()
            .map { "printf 'GET /ok.txt HTTP/1.0\\r\\n\\r\\n' | timeout 4 nc -w 3 \($0.element) | grep hello; echo \"fetch\($0.offset)=$?\"" }
            .joined(separator: "; ")
        let script = "grep -o '^ *[a-z0-9]*:' /proc/net/dev | tr -d ' :' | sort | tr '\\n' ' '; echo; " + probe
        for (id, signer) in [("granted", "alice"), ("denied", "bob")] {
            try GridFixture.taskFile(dir, id, script, timeout: 60)
            let submitted = try home.dgrid("submit", "--repo", url, "--sign", "--key", keys.key(signer), dir + "/\(id).json")
            #expect(submitted.status == 0, "\(submitted.stderr)")
        }
        let logged = { (try? Shell.run(["dmesg"]).stdout.split(separator: "\n").filter { $0.contains("dgrid-egress dgv") }) ?? [] }
        // The kernel's ring buffer drops its oldest lines when full: new lines are told by their time, not by a count.
        let stamp = { (line: Substring) in Double(line.drop { $0 == "[" || $0 == " " }.prefix { $0 != "]" }) ?? 0 }
        let loggedBefore = logged().map(stamp).max() ?? 0
        let worker = try home.dgrid("worker", "--repo", url, "--node-id", "node_e", "--once")
        #expect(worker.status == 0, "\(worker.stderr)")
        func record(_ id: String) throws -> [String: Any] {
            let path = try #require(try GridFixture.mainFiles(repo).first { $0.hasSuffix("-\(id).json.log") })
            return try JSONSerialization.jsonObject(with: Data(try GridFixture.show(repo, path).utf8)) as? [String: Any] ?? [:]
        }
        let granted = try record("granted"), denied = try record("denied")
        let grantedOut = granted["stdout"] as? String ?? "", deniedOut = denied["stdout"] as? String ?? ""
        // The grant: the allowed host and port answer; the other port and the other host do not.
        #expect(grantedOut.contains("hello from 10.77.1.2") && grantedOut.contains("fetch0=0"), "\(granted)")
        #expect(!grantedOut.contains("fetch1=0") && !grantedOut.contains("fetch2=0") && !grantedOut.contains("hello from 10.77.2.2"), "\(grantedOut)")
        #expect(grantedOut.hasPrefix("eth0 lo"), "\(grantedOut)")
        #expect((granted["egress_blocked"] as? Int ?? 0) > 0, "\(granted)")
        // No grant: loopback only, nothing reachable, no egress accounting.
        #expect(deniedOut.hasPrefix("lo \n") && !deniedOut.contains("fetch0=0") && !deniedOut.contains("hello"), "\(deniedOut)")
        #expect(denied["egress_blocked"] == nil, "\(denied)")
        // Each refused attempt is in the kernel's log, under the sandbox's interface.
        let lines = logged().filter { stamp($0) > loggedBefore }
        #expect(lines.contains { $0.contains("DST=10.77.1.2") && $0.contains("DPT=8081") }
                && lines.contains { $0.contains("DST=10.77.2.2") && $0.contains("DPT=8080") }, "\(lines)")
        let events = try GridQuotaCLITests.events(home).filter { $0["event"] as? String == "egress_blocked" }
        #expect(events.count == 1 && events.first?["task_id"] as? String == "granted", "\(events)")
        // The wiring is gone with the task: no veth, no table.
        let links = try Shell.run(["ip", "-o", "link", "show"]).stdout
        #expect(!links.contains("dgv"), "\(links)")
        let tables = try Shell.run(["nft", "list", "tables"]).stdout
        #expect(!tables.contains("dgrid_s"), "\(tables)")
    }

    @Test func badEgressEntriesAreRefusedNamingTheEntry() throws {
        let keys = try GridQuotaCLITests.Principals()
        for (entry, reason) in [("example.com:443/tcp", "is not an IPv4 address or CIDR block"), ("10.0.0.1:443/icmp", "tcp or udp"),
                                ("10.0.0.1/40:443/tcp", "prefix length"), ("10.0.0.1", "no port")] {
            let home = try keys.home(policy: "[principals.\"alice@example.com\"]\negress = [\"\(entry)\"]\n")
            let repo = try GridFixture.bareRepository()
            #expect(try home.dgrid("init", "--repo", "file://" + repo).status == 0)
            let worker = try home.dgrid("worker", "--repo", "file://" + repo, "--once")
            #expect(worker.status == 78 && worker.stderr.contains(reason), "\(entry): \(worker.stderr)")
        }
    }
}
