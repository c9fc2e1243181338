import Foundation
import Sandbox
import Testing
@testable import Runner
import TestSupport

/// The worker's settings (issue 10, operator control): precedence per key,
/// every value type, and an error naming the key and its source for each bad value.
@Suite(.unit) struct WorkerConfigResolverTests {
    static let host = WorkerConfigResolver.Host(cores: 8, memoryBytes: 16 << 30, defaultNodeID: "node_test")
    static let path = "/etc/dgrid/worker.toml"

    static func resolve(flags: [WorkerConfigResolver.Flag] = [], environment: [String: String] = [:],
                        toml: String? = nil) throws -> WorkerConfig {
        let file = try toml.map { try WorkerConfigFile.parse($0, path: path) }
        return try WorkerConfigResolver.resolve(flags: flags, environment: environment, file: file, host: host)
    }

    /// The error text for a configuration that must be refused.
    static func refusal(flags: [WorkerConfigResolver.Flag] = [], environment: [String: String] = [:], toml: String? = nil) -> String {
        do {
            _ = try resolve(flags: flags, environment: environment, toml: toml)
            return "accepted"
        } catch {
            return "\(error)"
        }
    }

    @Test func withNothingGivenEveryKeyHasItsBuiltInDefault() throws {
        let config = try Self.resolve()
        #expect(config.entries.count == WorkerSettingKey.allCases.count)
        #expect(WorkerSettingKey.allCases.allSatisfy { config.source($0) == .defaultValue })
        #expect(config.nodeID == "node_test")
        #expect(config.slots == 4)  // half of 8 cores; 16 GiB / 2 / 512m allows 16
        #expect(config.heartbeatSeconds == 30 && config.leaseSeconds == 90)
        #expect(config.taskLimits == TaskLimits())
        #expect(config.outputLimit == ByteCount(bytes: 10 * 1024))
        #expect(config.defaultImage?.description == "dgrid/busybox:latest")
        #expect(config.logLevel == .info)
    }

    /// flag > environment > file > default, decided per key.
    @Test func eachKeyTakesItsHighestSource() throws {
        let config = try Self.resolve(
            flags: [.init(key: .slots, text: "3", name: "--slots")],
            environment: ["DGRID_SLOTS": "5", "DGRID_MAX_PIDS": "999", "DGRID_MAX_CPUS": ""],
            toml: "slots = 7\nmax_pids = 500\nmax_cpus = 2\nmax_memory = \"2g\"\n")
        #expect(config.slots == 3 && config.source(.slots) == .flag("--slots"))
        #expect(config.maxPids == 999 && config.source(.maxPids) == .environment("DGRID_MAX_PIDS"))
        // An empty variable counts as unset.
        #expect(config.maxCPUs == 2 && config.source(.maxCPUs) == .file(Self.path))
        #expect(config.maxMemory.bytes == 2 << 30 && config.source(.maxMemory) == .file(Self.path))
        #expect(config.maxFileSize.bytes == 256 * 1024 && config.source(.maxFileSize) == .defaultValue)
    }

    @Test func theDGRIDNameWinsOverDGRIDsOldName() throws {
        let config = try Self.resolve(environment: ["PULL_INTERVAL": "3", "DGRID_POLL_SECONDS": "4", "HEARTBEAT_INTERVAL": "2"])
        #expect(config.pollSeconds == 4 && config.source(.pollSeconds) == .environment("DGRID_POLL_SECONDS"))
        #expect(config.heartbeatSeconds == 2 && config.source(.heartbeatSeconds) == .environment("HEARTBEAT_INTERVAL"))
        // The lease default follows the effective heartbeat.
        #expect(config.leaseSeconds == 6 && config.source(.leaseSeconds) == .defaultValue)
    }

    @Test func aRepeatedSetFlagKeepsTheLastValue() throws {
        let flags = try ["max_pids=1000", "max_pids=2000"].map { try WorkerConfigResolver.Flag(assignment: $0) }
        let config = try Self.resolve(flags: flags, toml: "max_pids = 5")
        #expect(config.maxPids == 2000 && config.source(.maxPids) == .flag("--set max_pids"))
    }

    @Test func slotsDefaultIsBoundedByMemoryAtTheDefaultTaskMemory() throws {
        let config = try Self.resolve(toml: "default_memory = \"4g\"")
        #expect(config.slots == 2)  // 16 GiB / 2 / 4 GiB
    }

    /// Each kind from the file: integers, floats, sizes as integer or string, images, levels.
    @Test func everyTypeIsReadFromTheFile() throws {
        let config = try Self.resolve(toml: """
            node_id = "rack4.w2"
            heartbeat_seconds = 2.5
            lease_seconds = 20
            default_image = "registry.example:5000/tools/python:3.12"
            default_cpus = 0.5
            output_limit = 65536
            max_script_size = "16k"
            max_timeout_seconds = 600
            log_level = "DEBUG"
            """)
        #expect(config.nodeID == "rack4.w2")
        #expect(config.heartbeatSeconds == 2.5 && config.leaseSeconds == 20)
        #expect(config.defaultImage?.repository == "registry.example:5000/tools/python" && config.defaultImage?.tag == "3.12")
        #expect(config.defaultCPUs == 0.5)
        #expect(config.outputLimit.bytes == 65536 && config.maxScriptSize.bytes == 16 * 1024)
        #expect(config.taskLimits.timeoutRange == 1...600)
        #expect(config.logLevel == .debug)
    }

    @Test func applyHandsEveryValueToTheGridSettings() throws {
        let config = try Self.resolve(toml: "shard_count = 8\nfold_interval_seconds = 1\npoll_ceiling_seconds = 30\ndefault_pids = 64\nmax_memory = \"1g\"\ndefault_memory = \"256m\"")
        var settings = GridSettings(repository: "file:///grid", nodeID: "w1", state: StateDirectory(path: "/nonexistent"))
        config.apply(to: &settings)
        #expect(settings.shardCount == 8 && settings.ownShards == GridSettings.defaultShards(nodeID: "w1", shardCount: 8))
        #expect(settings.foldIntervalSeconds == 1 && settings.pollCeilingSeconds == 30)
        #expect(settings.defaultPids == 64 && settings.defaultMemoryBytes == 256 << 20)
        #expect(settings.limits.maxMemoryBytes == 1 << 30)
        #expect(settings.outputLimit == 10 * 1024 && settings.defaultImage == "dgrid/busybox:latest")
        #expect(settings.fleetPollSeconds == GridSettings.defaultFleetPollSeconds)
    }

    /// The fleet's idle listings stay near 1/fleet_poll_seconds a second whatever its size:
    /// an idle slot waits nodes × slots × fleet_poll_seconds at least (docs/ARCHITECTURE.md §11).
    @Test func anIdleSlotsShareOfTheFleetsListingsGrowsWithTheFleet() throws {
        var settings = GridSettings(repository: "file:///grid", nodeID: "w1", state: StateDirectory(path: "/nonexistent"))
        try Self.resolve(toml: "slots = 1").apply(to: &settings)
        #expect(settings.idleListingFloor(nodes: 100) == 10, "100 one-slot workers: 10 listings a second in all")
        #expect(abs(settings.idleListingFloor(nodes: 1_000) - 100) < 1e-9)
        #expect(abs(settings.idleListingFloor(nodes: 0) - 0.1) < 1e-9, "before any listing: itself")
        try Self.resolve(toml: "slots = 4\nfleet_poll_seconds = 0.5").apply(to: &settings)
        #expect(settings.idleListingFloor(nodes: 10) == 20, "4 slots each poll: 40 slots share the budget of 2/s")
        try Self.resolve(toml: "fleet_poll_seconds = 0").apply(to: &settings)
        #expect(settings.idleListingFloor(nodes: 1_000) == 0, "off: poll_seconds alone decides")
        #expect(Self.refusal(toml: "fleet_poll_seconds = 61") == "worker config /etc/dgrid/worker.toml: fleet_poll_seconds: 61 is out of range; expected a number of seconds in 0...60")
        #expect(Self.refusal(toml: "fleet_poll_seconds = -0.1") == "worker config /etc/dgrid/worker.toml: fleet_poll_seconds: -0.1 is out of range; expected a number of seconds in 0...60")
    }

    /// One row per bad value: where it came from, the key, and what was wrong.
    @Test(arguments: [
        // wrong TOML type
        ("slots = \"4\"", "worker config /etc/dgrid/worker.toml: slots: expected a whole number in 1...256, found a string (\"4\")"),
        ("max_pids = 1.5", "worker config /etc/dgrid/worker.toml: max_pids: expected a whole number in 1...4194304, found a floating-point number"),
        ("max_memory = true", "worker config /etc/dgrid/worker.toml: max_memory: expected a size in 1m...16t (bytes as an integer, or a string such as \"512m\"), found a boolean"),
        ("default_image = 7", "worker config /etc/dgrid/worker.toml: default_image: expected an image reference such as \"dgrid/busybox:latest\" or \"NAME@sha256:…\", found an integer"),
        ("poll_seconds = [1, 2]", "worker config /etc/dgrid/worker.toml: poll_seconds: expected a number of seconds in 0.05...3600, found an array"),
        ("[limits]\nmax_pids = 5", "worker config /etc/dgrid/worker.toml: unknown key \"limits\"; valid keys: \(WorkerSettingKey.validKeyList)"),
        // negative and out of range
        ("output_limit = -1", "worker config /etc/dgrid/worker.toml: output_limit: -1 is negative; expected a size in 1...1g (bytes as an integer, or a string such as \"512m\")"),
        ("slots = 0", "worker config /etc/dgrid/worker.toml: slots: 0 is out of range; expected a whole number in 1...256"),
        ("heartbeat_seconds = -5", "worker config /etc/dgrid/worker.toml: heartbeat_seconds: -5 is out of range; expected a number of seconds in 0.1...3600"),
        ("max_cpus = 0", "worker config /etc/dgrid/worker.toml: max_cpus: 0 is out of range; expected a number of CPUs in 0.01...4096"),
        ("output_limit = \"2g\"", "worker config /etc/dgrid/worker.toml: output_limit: 2g is out of range; expected a size in 1...1g (bytes as an integer, or a string such as \"512m\")"),
        ("max_timeout_seconds = 0", "worker config /etc/dgrid/worker.toml: max_timeout_seconds: 0 is out of range; expected a whole number in 1...31536000"),
        // unparsable strings
        ("max_memory = \"lots\"", "worker config /etc/dgrid/worker.toml: max_memory: \"lots\" is not a size in 1m...16t (bytes as an integer, or a string such as \"512m\")"),
        ("log_level = \"loud\"", "worker config /etc/dgrid/worker.toml: log_level: \"loud\" is not one of trace, debug, info, notice, warning, error, critical"),
        // unknown key: refused, with every valid key listed
        ("max_memroy = \"1g\"", "worker config /etc/dgrid/worker.toml: unknown key \"max_memroy\"; valid keys: \(WorkerSettingKey.validKeyList)"),
        // hostile text is escaped before it reaches a terminal or log
        ("\"max\\u001b[31m\" = 1", "worker config /etc/dgrid/worker.toml: unknown key \"max\\u{1b}[31m\"; valid keys: \(WorkerSettingKey.validKeyList)"),
        ("default_image = \"a\\u009b2J\"", "worker config /etc/dgrid/worker.toml: default_image: \"a\\u{9b}2J\" is not an image reference such as \"dgrid/busybox:latest\" or \"NAME@sha256:…\": name must be lowercase components of a-z 0-9 separated by '.', '_', '-' and joined by '/', optionally after a registry host"),
        // valid alone, contradictory together
        ("max_memory = \"256m\"", "worker config /etc/dgrid/worker.toml: max_memory: default_memory (512m) is above max_memory (256m); raise max_memory or lower default_memory"),
        ("default_cpus = 8", "worker config /etc/dgrid/worker.toml: default_cpus: default_cpus (8) is above max_cpus (4); raise max_cpus or lower default_cpus"),
        ("poll_seconds = 200", "worker config /etc/dgrid/worker.toml: poll_seconds: poll_seconds (200) is above poll_ceiling_seconds (120); raise poll_ceiling_seconds or lower poll_seconds"),
    ])
    func aBadFileValueIsRefusedNamingTheFileAndKey(toml: String, message: String) {
        #expect(Self.refusal(toml: toml) == message)
    }

    @Test func aBadNodeIDIsRefusedWithNodeIdentifiersReason() {
        let message = Self.refusal(toml: "node_id = \"w-1\"")
        #expect(message.hasPrefix("worker config /etc/dgrid/worker.toml: node_id: invalid node id \"w-1\": a node id may not contain '-'"), "\(message)")
    }

    @Test func aBadImageIsRefusedWithTheReferenceProblem() {
        let message = Self.refusal(toml: "default_image = \"UPPER/case\"")
        #expect(message.hasPrefix("worker config /etc/dgrid/worker.toml: default_image: \"UPPER/case\" is not an image reference"), "\(message)")
    }

    @Test func badEnvironmentAndFlagValuesNameTheVariableOrFlag() throws {
        #expect(Self.refusal(environment: ["DOCKER_MEMORY": "-1"])
            == "environment variable DOCKER_MEMORY: default_memory: \"-1\" is not a size in 1m...16t (bytes as an integer, or a string such as \"512m\")")
        #expect(Self.refusal(environment: ["DGRID_SHARD_COUNT": "sixteen"])
            == "environment variable DGRID_SHARD_COUNT: shard_count: \"sixteen\" is not a whole number in 1...4096")
        #expect(Self.refusal(flags: [.init(key: .slots, text: "0", name: "--slots")])
            == "flag --slots: slots: 0 is out of range; expected a whole number in 1...256")
        #expect(throws: WorkerConfigError.unknownKey(key: "max_memroy", source: .flag("--set"))) {
            try WorkerConfigResolver.Flag(assignment: "max_memroy=1g")
        }
        #expect(throws: WorkerConfigError.invalid(key: .maxPids, source: .flag("--set"), problem: .badValue("no value; use --set max_pids=VALUE"))) {
            try WorkerConfigResolver.Flag(assignment: "max_pids")
        }
    }

    /// A bad value in a lower source is still refused when a higher one wins:
    /// the operator's file is wrong either way, and would bite once the flag goes.
    @Test func aBadFileValueIsRefusedEvenWhenAFlagOverridesIt() {
        let message = Self.refusal(flags: [.init(key: .slots, text: "2", name: "--slots")], toml: "slots = \"two\"")
        #expect(message.contains("slots: expected a whole number"), "\(message)")
    }

    @Test func unparsableTOMLIsRefusedWithItsLine() {
        #expect(throws: WorkerConfigError.self) { try WorkerConfigFile.parse("slots = 2\nmax_pids = = 3\n", path: Self.path) }
        do {
            _ = try WorkerConfigFile.parse("slots = 2\n\nmax_pids = = 3\n", path: Self.path)
        } catch let error as WorkerConfigError {
            guard case .unparsable(let path, let line, _, _) = error else { Issue.record("\(error)"); return }
            #expect(path == Self.path && line == 3)
            #expect("\(error)".hasPrefix("worker config /etc/dgrid/worker.toml, line 3, column "), "\(error)")
        } catch {
            Issue.record("\(error)")
        }
    }

    @Test func theFileIsFoundByFlagThenVariableThenHomeThenEtc() throws {
        let present: Set<String> = ["/home/d/worker.toml", "/etc/dgrid/worker.toml"]
        let exists = { (path: String) in present.contains(path) }
        #expect(WorkerConfigLocation.path(flag: "/x.toml", environment: ["DGRID_CONFIG": "/y.toml"], exists: exists)! == ("/x.toml", true))
        #expect(WorkerConfigLocation.path(flag: nil, environment: ["DGRID_CONFIG": "/y.toml", "DGRID_HOME": "/home/d"], exists: exists)! == ("/y.toml", true))
        #expect(WorkerConfigLocation.path(flag: nil, environment: ["DGRID_HOME": "/home/d"], exists: exists)! == ("/home/d/worker.toml", false))
        #expect(WorkerConfigLocation.path(flag: nil, environment: ["DGRID_HOME": "/other"], exists: exists)! == ("/etc/dgrid/worker.toml", false))
        #expect(WorkerConfigLocation.path(flag: nil, environment: [:], exists: { _ in false }) == nil)
    }

    @Test func aNamedFileThatIsMissingIsRefused() throws {
        #expect(throws: WorkerConfigError.unreadable(path: "/nonexistent/worker.toml", reason: "No such file or directory")) {
            try WorkerConfigLocation.load(flag: "/nonexistent/worker.toml", environment: [:])
        }
    }

    @Test func theReportShowsEachValueAndItsSource() throws {
        let config = try Self.resolve(flags: [.init(key: .slots, text: "3", name: "--slots")],
                                      environment: ["DGRID_MAX_PIDS": "999"], toml: "max_memory = \"2g\"")
        let text = WorkerConfigReport.text(config, file: Self.path)
        // Columns are as wide as the longest key and value: compare words, not spacing.
        #expect(text.split(separator: "\n").contains { $0.split(separator: " ") == ["slots", "3", "#", "flag", "--slots"] }, "\(text)")
        #expect(text.contains("# env DGRID_MAX_PIDS"))
        #expect(text.contains("# file /etc/dgrid/worker.toml"))
        let json = WorkerConfigReport.json(config, file: Self.path)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        let settings = try #require(object["settings"] as? [String: [String: Any]])
        #expect(settings.count == WorkerSettingKey.allCases.count)
        #expect(settings["max_memory"]?["value"] as? Int == 2 << 30)
        #expect((settings["max_memory"]?["source"] as? [String: String]) == ["kind": "file", "path": Self.path])
        #expect((settings["max_pids"]?["source"] as? [String: String]) == ["kind": "env", "variable": "DGRID_MAX_PIDS"])
        #expect(settings["default_image"]?["value"] as? String == "dgrid/busybox:latest")
    }
}

/// docs/worker.toml.example stays true: every key is in it, and each line it
/// shows, uncommented, gives the built-in default.
@Suite(.unit) struct WorkerConfigExampleTests {
    @Test func theExampleListsEveryKeyWithItsDefault() throws {
        let path = TestSupport.packageRoot.appendingPathComponent("docs/worker.toml.example").path
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let assignments = text.split(separator: "\n").compactMap { line -> String? in
            guard line.hasPrefix("# "), let key = line.dropFirst(2).split(separator: " ").first,
                  WorkerSettingKey(rawValue: String(key)) != nil else { return nil }
            return String(line.dropFirst(2))
        }
        let file = try WorkerConfigFile.parse(assignments.joined(separator: "\n"), path: path)
        #expect(Set(file.values.keys) == Set(WorkerSettingKey.allCases.map(\.rawValue)))
        let defaults = try WorkerConfigResolver.resolve(flags: [], environment: [:], file: nil, host: WorkerConfigResolverTests.host)
        let shown = try WorkerConfigResolver.resolve(flags: [], environment: [:], file: file, host: WorkerConfigResolverTests.host)
        // The node id and slot count depend on the host; the example shows a sample.
        for key in WorkerSettingKey.allCases where key != .nodeID && key != .slots {
            #expect(shown.entries[key]?.value == defaults.entries[key]?.value, "\(key.rawValue)")
        }
    }
}
