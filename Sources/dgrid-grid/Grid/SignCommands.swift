import ArgumentParser
import DGridCLI
import Foundation
import Runner
import Sandbox
import Trust

/// `dgrid sign FILE...`: signs task files for this host's trust check
/// (docs/ARCHITECTURE.md §9). A file without a `grid` field gets the grid's id
/// first (from --grid-id or --repo), since a signed task must name its grid.
struct GridSignCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sign", abstract: VerbAbstract.gridSign,
        discussion: "Appends an SSH signature (namespace dgrid-task) to FILE.json.sig, so several people can sign one task. The key is used through ssh-keygen: a passphrase is asked for, and a key in ssh-agent signs when you give its .pub.")

    @OptionGroup var grid: GridOptions

    @Option(name: .long, help: ArgumentHelp("Signing key: a private key, or the .pub of a key in ssh-agent; default $DGRID_SIGNING_KEY, else ~/.ssh/id_ed25519.", valueName: "FILE"))
    var key: String?

    @Option(name: .long, help: ArgumentHelp("The grid the tasks are for (dgrid init prints it); else read from --repo.", valueName: "ID"))
    var gridID: String?

    @Argument(help: ArgumentHelp("Task files.", valueName: "FILE.json"))
    var files: [String]

    func run() throws {
        let signer = TaskSigner(keyPath: key ?? TaskSigner.defaultKey())
        var lazyGrid: GridID?
        func gridForTasks() -> GridID {
            if let lazyGrid { return lazyGrid }
            if let gridID {
                guard let id = GridID(gridID) else { ImageCLI.fail(GridError.local("--grid-id \(UntrustedText.shown(gridID)): not a grid id (g- and 32 hex digits)")) }
                lazyGrid = id
                return id
            }
            do {
                guard let id = try GridStatus(connection: grid.connect()).trustContext().grid else {
                    ImageCLI.fail(GridError.local("the grid has no id yet: run `dgrid init --repo URL` first"))
                }
                lazyGrid = id
                return id
            } catch {
                ImageCLI.fail(error)
            }
        }
        for file in files {
            guard let data = FileManager.default.contents(atPath: file) else { ImageCLI.fail(GridError.local("\(file): cannot read")) }
            var task: TaskFile
            switch TaskParser.parse(Array(data)) {
            case .success(let parsed): task = parsed
            case .failure(let rejection): ImageCLI.fail(GridError.invalidTask(path: file, reason: rejection.reason))
            }
            if task.grid == nil {
                // Rewriting the file would break any signature already made over it.
                if FileManager.default.fileExists(atPath: file + TaskSignatureCheck.signatureSuffix) {
                    ImageCLI.fail(GridError.local("\(file) names no grid but is signed already: add \"grid\" and sign it again from the start (remove \(file).sig)"))
                }
                task.grid = gridForTasks().value
                do {
                    try Data(TaskParser.encode(task)).write(to: URL(fileURLWithPath: file), options: .atomic)
                } catch {
                    ImageCLI.fail(GridError.local("\(file): cannot write: \(error)"))
                }
            }
            do {
                let fingerprint = try signer.sign(file: file)
                print("\(file): signed by \(fingerprint) for grid \(task.grid ?? "?") (\(file)\(TaskSignatureCheck.signatureSuffix))")
            } catch {
                ImageCLI.fail(error)
            }
        }
    }
}

/// `dgrid verify FILE...`: the trust check a worker on this host makes, on
/// local files: who signed each, or why it would be refused.
struct GridVerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify", abstract: VerbAbstract.gridVerify,
        discussion: "Reads this host's $DGRID_HOME/trust/ (allowed_signers, revoked_keys, policy.toml). With --repo (or $DGRID_REPO_URL) the grid and replay checks run too. Exits 1 when any file would be refused.")

    @OptionGroup var grid: GridOptions

    @Flag(name: .long, help: "Check as a worker started with --allow-unsigned would.")
    var allowUnsigned = false

    @Argument(help: ArgumentHelp("Task files (FILE.json.sig and/or FILE.json.asc beside each).", valueName: "FILE.json"))
    var files: [String]

    func run() throws {
        let trust = HostTrustLoader.load()
        var check = TaskSignatureCheck(trust: trust, allowUnsigned: allowUnsigned)
        let haveRepo = !grid.repo.isEmpty || !(ProcessInfo.processInfo.environment["DGRID_REPO_URL"] ?? "").isEmpty
        var context: (grid: GridID?, finished: FinishedTasks)?
        if haveRepo {
            do {
                let connection = grid.connect()
                let status = GridStatus(connection: connection)
                context = try status.trustContext()
                // The grid's fleet policy beneath this host's, as a worker here applies it.
                check = TaskSignatureCheck(trust: try HostTrustLoader.onGrid(trust, connection: connection), allowUnsigned: allowUnsigned,
                                           defaultImage: connection.settings.defaultImage)
            } catch {
                ImageCLI.fail(error)
            }
        }
        var refused = 0
        for file in files {
            guard let data = FileManager.default.contents(atPath: file) else { ImageCLI.fail(GridError.local("\(file): cannot read")) }
            var signatures = TaskSignatureFiles()
            for suffix in TaskSignatureFiles.suffixes {
                signatures[suffix] = FileManager.default.contents(atPath: file + suffix).map { Array($0) }
            }
            let task: TaskFile
            switch TaskParser.parse(Array(data)) {
            case .success(let parsed): task = parsed
            case .failure(let rejection):
                print("\(file): refused: \(rejection.reason)")
                refused += 1
                continue
            }
            // Without the grid, check as if the task named this grid and had no result yet.
            let gridID = context.map { $0.grid } ?? task.grid.flatMap(GridID.init)
            do {
                let auth = try check.check(task: task, bytes: Array(data), signatures: signatures, grid: gridID,
                                           finished: context?.finished.contains(task.taskID) ?? false)
                let who = auth.isSigned
                    ? "signed by " + zip(auth.principals, auth.fingerprints).map { "\(UntrustedText.shown($0.0, limit: 64)) (\($0.1))" }.joined(separator: ", ")
                    : "unsigned, allowed on this host"
                print("\(file): \(who)\(context == nil ? "; grid and replay not checked (give --repo)" : "")")
            } catch {
                print("\(file): refused: \(error)")
                refused += 1
            }
        }
        if refused > 0 { throw ExitCode(1) }
    }
}

/// `dgrid audit`: this host's audit log (docs/ARCHITECTURE.md §9), filtered.
struct GridAuditCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit", abstract: VerbAbstract.gridAudit,
        discussion: "Reads $DGRID_HOME/audit.log and its rotations (audit.log.1 … .3): signatures accepted and refused, unsigned tasks allowed, tasks timed out or OOM-killed.")

    @Option(name: .long, help: ArgumentHelp("Only events at or after this time (ISO-8601, e.g. 2026-12-01T00:00:00Z).", valueName: "TIME"))
    var since: String?

    @Option(name: .long, help: ArgumentHelp("Only this kind of event (\(AuditEvent.Kind.allCases.map(\.rawValue).joined(separator: ", "))).", valueName: "EVENT"))
    var event: String?

    @Flag(name: .long, help: "Print each event as its JSON line.")
    var json = false

    func run() throws {
        var from: Date?
        if let since {
            guard let parsed = ISOTime.parse(since) else { ImageCLI.fail(GridError.local("--since \(UntrustedText.shown(since)): not an ISO-8601 time like 2026-12-01T00:00:00Z")) }
            from = parsed
        }
        var kind: AuditEvent.Kind?
        if let event {
            guard let parsed = AuditEvent.Kind(rawValue: event) else {
                ImageCLI.fail(GridError.local("--event \(UntrustedText.shown(event)): use one of \(AuditEvent.Kind.allCases.map(\.rawValue).joined(separator: ", "))"))
            }
            kind = parsed
        }
        let state = StateDirectory.forThisUser()
        for entry in AuditLog.read(path: state.path + "/" + AuditLog.fileName) {
            if let from, entry.time < from { continue }
            if let kind, entry.kind != kind { continue }
            if json {
                print(UntrustedText.jsonSafe(entry.line))
                continue
            }
            var words = [ISOTime.string(entry.time), entry.kind.rawValue]
            if let task = entry.taskID { words.append("task=" + UntrustedText.shown(task, limit: 130)) }
            if let node = entry.nodeID { words.append("node=" + UntrustedText.shown(node, limit: 64)) }
            if !entry.principals.isEmpty { words.append("by=" + entry.principals.map { UntrustedText.shown($0, limit: 64) }.joined(separator: ",")) }
            if let reason = entry.reason { words.append("— " + UntrustedText.shown(reason, limit: 400)) }
            print(words.joined(separator: " "))
        }
    }
}
