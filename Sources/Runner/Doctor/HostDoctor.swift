import Glibc
import Sandbox

/// `dgrid doctor` (docs/ARCHITECTURE.md §12, "Doctor"): can this host run dgrid
/// workers? Runs every check — the kernel's through one real probe sandbox
/// (`SandboxProbe`), the rest against `$DGRID_HOME`, the trust files and the
/// grid — and returns them in `HostCheckID` order. Changes nothing it finds:
/// it makes `$DGRID_HOME/run` and the grid's mirror as a worker would, and
/// removes what its probe made (a run directory, a cgroup per limit). Never
/// ends the process; the CLI renders the report and exits with its status.
///
/// Each check is a plain function of its own (`KernelCheck`, `NamespaceCheck`,
/// `CgroupCheck`, `DiskSpaceCheck`, `GridRemoteCheck`, …), so a worker's
/// periodic self-checks can call the ones it needs.
public struct HostDoctor {
    public struct Inputs {
        public var state: StateDirectory
        /// The worker's settings as `dgrid worker` would resolve them, or why they do not resolve.
        public var config: Result<WorkerConfig, WorkerConfigError>
        /// Where the worker config came from, for the message (nil: defaults only).
        public var configFile: String?
        /// The grid as the worker would reach it; nil when no repository is given (`gridProblem` says why).
        public var grid: GridSettings?
        public var gridProblem: String?
        /// The worker will run with `--no-cgroup-limits`.
        public var runWithoutCgroupLimits = false
        /// Check this user's subordinate ids (`--user`), not this process's.
        public var rootlessUser: String?

        public init(state: StateDirectory, config: Result<WorkerConfig, WorkerConfigError>, configFile: String? = nil,
                    grid: GridSettings?, gridProblem: String?) {
            self.state = state
            self.config = config
            self.configFile = configFile
            self.grid = grid
            self.gridProblem = gridProblem
        }
    }

    public let inputs: Inputs

    public init(_ inputs: Inputs) {
        self.inputs = inputs
    }

    public func run() -> DoctorReport {
        var checks: [HostCheck] = []
        let state = inputs.state
        let defaults = GridSettings(repository: "", nodeID: "node_doctor", state: state)
        let config = try? inputs.config.get()
        checks.append(configCheck())

        // The home first: the probe sandbox and the image store live in it.
        let home = StateDirectoryCheck.check(state)
        checks.append(home)
        checks += DiskSpaceCheck.check(home: state.path, thresholds: .init(slots: config?.slots ?? defaults.slots,
                                                                           outputSize: config?.outputSize ?? defaults.outputSize))

        let compiled = Result { () throws(SeccompError) in try DefaultSeccomp.filter(state: state) }
        let runner: SandboxRunner
        do {
            runner = SandboxRunner(cgroups: try Cgroups.detectDriver(), state: state)
        } catch {
            runner = SandboxRunner(cgroups: nil, unavailableReason: "\(error)", state: state)
        }
        let probe = home.status == .fail
            ? SandboxProbeReport(runs: [], unavailable: "$DGRID_HOME is unusable (state_directory)")
            : SandboxProbe.run(runner: runner, state: state, seccomp: try? compiled.get())
        checks.append(KernelCheck.check(probe: probe))
        checks += NamespaceKind.allCases.map { NamespaceCheck.check($0, probe: probe) }
        checks.append(OverlayCheck.check(probe: probe))
        checks.append(CgroupCheck.check(runWithoutLimits: inputs.runWithoutCgroupLimits))
        checks.append(SeccompCheck.check(compiled: compiled, probe: probe))
        checks.append(NoNewPrivsCheck.check(probe: probe))
        checks.append(SandboxPathCheck.check(probe: probe))
        checks.append(SubordinateIDCheck.check(user: inputs.rootlessUser))

        let defaultImage = config?.defaultImage?.description ?? defaults.defaultImage
        checks += ImageStoreCheck.check(state: state, defaultImage: defaultImage)
        checks += TrustFilesCheck.check(state: state)
        checks += NodeTrustCheck.check(state: state)
        checks += gridChecks(config: config)

        let order = Dictionary(uniqueKeysWithValues: HostCheckID.allCases.enumerated().map { ($1, $0) })
        return DoctorReport(checks: checks.sorted { order[$0.id, default: 0] < order[$1.id, default: 0] })
    }

    private func configCheck() -> HostCheck {
        switch inputs.config {
        case .success:
            return .pass(.workerConfig, inputs.configFile.map { "\($0) and the environment resolve" } ?? "no config file; the environment and defaults resolve")
        case .failure(let error):
            return .fail(.workerConfig, "\(error): dgrid worker would exit 78", fix: "correct the setting named above (dgrid worker --print-config shows every source)")
        }
    }

    private func gridChecks(config: WorkerConfig?) -> [HostCheck] {
        guard var settings = inputs.grid else {
            let why = inputs.gridProblem ?? "no grid repository given"
            let fix = "give --repo URL or set DGRID_REPO_URL (with the credentials the worker uses)"
            let status: HostCheckStatus = inputs.gridProblem == nil ? .warn : .fail
            return [HostCheck(.gridRemote, status, "not checked: \(why)", fix: fix),
                    .warn(.gridClock, "not measured: no grid to compare with", fix: fix)]
        }
        config?.apply(to: &settings)
        let remote = GridRemoteCheck.run(settings: settings)
        let thresholds = ClockSkewCheck.Thresholds(leaseSeconds: settings.leaseSeconds, heartbeatSeconds: settings.heartbeatSeconds)
        guard let ledger = remote.ledger, let refs = remote.refs else {
            return [remote.check, .warn(.gridClock, "not measured: the grid cannot be listed", fix: "fix grid.remote first")]
        }
        let evidence = ClockEvidence.gather(settings: settings, ledger: ledger, refs: refs)
        return [remote.check, ClockSkewCheck.check(evidence, thresholds: thresholds)]
    }
}
