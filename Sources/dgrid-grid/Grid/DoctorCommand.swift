import ArgumentParser
import DGridCLI
import Foundation
import Runner
import Sandbox

/// `dgrid doctor`: can this host run dgrid workers (docs/ARCHITECTURE.md §12,
/// "Doctor")? The checks are Runner's and Sandbox's (`HostDoctor`); this only
/// gathers what `dgrid worker` would be given — its settings and the grid's
/// credentials — renders the report and exits with its status. In
/// `dgrid-grid` because the grid checks need libgit2; `dgrid` execs it.
struct GridDoctorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor", abstract: VerbAbstract.gridDoctor,
        discussion: """
        Checks, each PASS, WARN or FAIL with a fix: the kernel, the user, pid, mount, network, UTS, IPC and cgroup \
        namespaces, overlayfs inside a user namespace, cgroups (the hierarchy, and a group created for each limit), \
        seccomp and no_new_privs — all through one real probe sandbox whose command does not exist, so nothing runs \
        — the whole spawn path, subordinate ids, the worker's settings, $DGRID_HOME (free space and inodes), the \
        image store (every blob rehashed; nothing is moved) and the default image, the trust files and their \
        permissions, the grid remote with the worker's credentials (listed, and a push connection opened with \
        nothing sent) and the clock against the grid's server and other workers' heartbeats. Give the options \
        `dgrid worker` gets. Exit status: 0 all pass, 1 warnings only, 2 any failure.
        """)

    @OptionGroup var grid: GridOptions

    @Option(name: .long, help: ArgumentHelp("Worker config file (TOML), as for dgrid worker; default $DGRID_CONFIG, else $DGRID_HOME/worker.toml, else /etc/dgrid/worker.toml when present.", valueName: "PATH"))
    var config: String?

    @Option(name: .customLong("set"), help: ArgumentHelp("Set a worker config key, as for dgrid worker (repeatable).", valueName: "KEY=VALUE"))
    var assignments: [String] = []

    @Option(name: .long, help: "The worker's node id (its own heartbeat is not compared with this clock); default as for dgrid worker.")
    var nodeId: String?

    @Option(name: .long, help: ArgumentHelp("Check this user's subordinate ids for a rootless worker (default: this process's user when not root).", valueName: "NAME"))
    var user: String?

    @Flag(name: .long, help: "The worker will run with --no-cgroup-limits: no usable cgroup is a warning, not a failure.")
    var noCgroupLimits = false

    @Flag(name: .long, help: "Print the report as JSON: each check's id, status (pass, warn, fail), detail and fix; the verdict and exit status.")
    var json = false

    func run() throws {
        let environment = ProcessInfo.processInfo.environment
        let resolved = Result { () throws(WorkerConfigError) in
            try WorkerConfigOptions.resolve(config: config, assignments: assignments,
                                            flags: nodeId.map { [.init(key: .nodeID, text: $0, name: "--node-id")] } ?? [],
                                            environment: environment)
        }
        let workerConfig = resolved.map(\.0)
        var gridSettings: GridSettings?
        var gridProblem: String?
        if !grid.repo.isEmpty || !(environment["DGRID_REPO_URL"] ?? "").isEmpty {
            do {
                gridSettings = try grid.resolvedSettings(nodeID: (try? workerConfig.get())?.nodeID ?? nodeId)
            } catch {
                gridProblem = UntrustedText.lineSafe("\(error)")
            }
        }
        var inputs = HostDoctor.Inputs(state: StateDirectory.forThisUser(), config: workerConfig,
                                       configFile: (try? resolved.get())?.1?.path, grid: gridSettings, gridProblem: gridProblem)
        inputs.runWithoutCgroupLimits = noCgroupLimits
        inputs.rootlessUser = user
        let report = HostDoctor(inputs).run()
        if json {
            print(ImageCLI.json(report))
        } else {
            print(Self.text(report), terminator: "")
        }
        if report.exitStatus != 0 { throw ExitCode(report.exitStatus) }
    }

    /// One line per check — status, id, what was found — and its fix on the
    /// next, indented; then the verdict.
    static func text(_ report: DoctorReport) -> String {
        let width = report.checks.map(\.id.rawValue.count).max() ?? 0
        var out = ""
        for check in report.checks {
            let status = check.status.rawValue.uppercased()
            out += UntrustedText.lineSafe("\(status)  \(check.id.rawValue.padding(toLength: width, withPad: " ", startingAt: 0))  \(check.detail)") + "\n"
            if let fix = check.fix, check.status != .pass {
                out += UntrustedText.lineSafe(String(repeating: " ", count: width + 8) + "fix: " + fix) + "\n"
            }
        }
        let counts = "\(report.count(.pass)) pass, \(report.count(.warn)) warn, \(report.count(.fail)) fail"
        switch report.verdict {
        case .pass: out += "\(counts): this host can run dgrid workers\n"
        case .warn: out += "\(counts): this host can run dgrid workers, with the warnings above\n"
        case .fail: out += "\(counts): a dgrid worker here would fail; fix the FAIL lines first\n"
        }
        return out
    }
}
