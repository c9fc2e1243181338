import ArgumentParser
import DGridCLI
import Foundation
import Runner
import Sandbox
import Trust

struct GridInitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init", abstract: VerbAbstract.gridInit)

    @OptionGroup var grid: GridOptions

    func run() throws {
        let connection = grid.connect()
        let outcome: GridInit.Outcome
        do {
            outcome = try GridInit(connection: connection).run()
        } catch {
            ImageCLI.fail(error)
        }
        let repository = connection.settings.repository
        print(outcome.created ? "initialised \(repository)" : "\(repository) is already a grid")
        // Signed tasks name this id in their `grid` field (docs/ARCHITECTURE.md §9).
        print("grid id: \(outcome.gridID)\(outcome.gridIDAdded ? " (new: this grid had none)" : "")")
        switch outcome.head {
        case .onGridBranch:
            break
        case .moved(let from):
            print("HEAD now names main (it named \(from), which has no commits), so `git clone` checks out the grid")
        case .leftOnOtherBranch(let branch):
            ImageCLI.note("HEAD names \(UntrustedText.shown(branch)), not main: `git clone` checks that out; the grid is on main (`git clone --branch main`)")
        case .serverNotOnGridBranch:
            ImageCLI.note("""
                the server's HEAD does not name main, so `git clone` checks out no grid; on the server run \
                `git -C PATH/TO/REPO.git symbolic-ref HEAD refs/heads/main` (or create repositories with \
                `git init --bare --initial-branch=main`), or clone with `--branch main`
                """)
        }
    }
}

struct GridSubmitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "submit", abstract: VerbAbstract.gridSubmit,
        discussion: "FILE.json or a directory of *.json files. Each needs task_id, script and timeout_seconds (D-GRID's format); image, priority, resources, env, depends_on are optional.")

    @OptionGroup var grid: GridOptions

    @Option(name: .long, help: ArgumentHelp("critical, high, normal or low (overrides the files').", valueName: "P"))
    var priority: String?

    @Flag(name: .long, help: "Write D-GRID's flat tasks/queue/<task_id>.json, which D-GRID's dashboard counts, instead of tasks/queue/<priority>/<shard>/; default $DGRID_QUEUE_LAYOUT=flat.")
    var flat = false

    @Flag(name: .long, help: "Sign each task as committed (it gets the grid's id in \"grid\"), with --key or the default signing key. Files with a FILE.json.sig beside them are committed as signed, byte for byte, either way.")
    var sign = false

    @Option(name: .long, help: ArgumentHelp("Signing key for --sign: a private key, or the .pub of a key in ssh-agent; default $DGRID_SIGNING_KEY, else ~/.ssh/id_ed25519.", valueName: "FILE"))
    var key: String?

    @Argument(help: ArgumentHelp("Task files or directories.", valueName: "FILE.json|DIR"))
    var paths: [String]

    func run() throws {
        var prio: TaskPriority?
        if let priority {
            guard let parsed = TaskPriority(rawValue: priority) else {
                ImageCLI.fail(GridError.local("unknown priority '\(priority)': use critical, high, normal or low"))
            }
            prio = parsed
        }
        var files: [(name: String, bytes: [UInt8])] = []
        var signatures: [String: TaskSignatureFiles] = [:]
        let fm = FileManager.default
        for path in paths {
            var isDirectory: ObjCBool = false
            guard fm.fileExists(atPath: path, isDirectory: &isDirectory) else { ImageCLI.fail(GridError.local("\(path): no such file")) }
            let names = isDirectory.boolValue
                ? ((try? fm.contentsOfDirectory(atPath: path)) ?? []).filter { $0.hasSuffix(".json") }.sorted().map { path + "/" + $0 }
                : [path]
            for name in names {
                guard let data = fm.contents(atPath: name) else { ImageCLI.fail(GridError.local("\(name): cannot read")) }
                files.append((name, Array(data)))
                for suffix in TaskSignatureFiles.suffixes {
                    if let signature = fm.contents(atPath: name + suffix) { signatures[name, default: TaskSignatureFiles()][suffix] = Array(signature) }
                }
            }
        }
        guard !files.isEmpty else { ImageCLI.fail(GridError.local("no task files in \(paths.joined(separator: ", "))")) }
        let connection = grid.connect()
        // The host's policy, checked up front in the words a worker uses (docs/ARCHITECTURE.md §9).
        let trust: HostTrust
        do {
            trust = try HostTrustLoader.onGrid(HostTrustLoader.load(state: connection.settings.state), connection: connection)
        } catch {
            ImageCLI.fail(error)
        }
        let settings = connection.settings
        let policy = GridSubmit.SubmitPolicy(check: TaskSignatureCheck(trust: trust, allowUnsigned: true, defaultImage: settings.defaultImage),
                                             admission: TaskAdmission(policy: trust.policy, settings: settings))
        do {
            let flatLayout = flat || ProcessInfo.processInfo.environment["DGRID_QUEUE_LAYOUT"] == "flat"
            let submitted = try GridSubmit(connection: connection).submit(files, priority: prio, submitter: ImageCLI.invokingUser(),
                                                                          flat: flatLayout, signatures: signatures,
                                                                          signer: sign ? TaskSigner(keyPath: key ?? TaskSigner.defaultKey()) : nil,
                                                                          policy: policy)
            for task in submitted { print("\(task.taskID) \(task.path)") }
        } catch {
            ImageCLI.fail(error)
        }
    }
}

struct GridFoldCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fold", abstract: VerbAbstract.gridFold)

    @OptionGroup var grid: GridOptions

    func run() throws {
        let connection = grid.connect()
        do {
            print(try GridFold(connection: connection).run())
            // With several backends (--repo A --repo B): bring the others in step with the authority.
            for outcome in try BackendReconciler(connection: connection).run() { print("backend \(outcome)") }
        } catch {
            ImageCLI.fail(error)
        }
    }
}

struct GridStatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: VerbAbstract.gridStatus)

    @OptionGroup var grid: GridOptions

    @Flag(name: .long, help: "Print JSON.")
    var json = false

    @Option(name: .long, help: ArgumentHelp("List at most N running tasks and N nodes (0: all); JSON lists all unless given.", valueName: "N"))
    var limit: Int?

    func validate() throws {
        if let limit, limit < 0 { throw ValidationError("--limit must be 0 (all) or more") }
    }

    func run() throws {
        let connection = grid.connect()
        do {
            // Principals as this host's trust sees them; without usable trust files, every one shows as unverified.
            let trust = (try? HostTrust.load(state: connection.settings.state)).map { TaskSignatureCheck(trust: $0) }
            var counts = try GridStatus(connection: connection).counts(trust: trust)
            // A grid with thousands of running tasks or nodes: a page of each, and how many more.
            let shownLimit = limit ?? (json ? 0 : 20)
            let (running, nodes) = (counts.running.count, counts.nodeRecords.count)
            if shownLimit > 0 {
                counts.running = Array(counts.running.prefix(shownLimit))
                counts.nodeRecords = Array(counts.nodeRecords.prefix(shownLimit))
            }
            if json {
                print(ImageCLI.json(counts))  // jsonSafe: the same values, inert on a terminal
            } else {
                print("grid id: \(counts.gridID?.description ?? "none (run dgrid init to give this grid one)")")
                for backend in counts.backends {
                    let role = backend.authority ? "authority" : "backup"
                    let main = backend.mainTip.map { "main \($0.prefix(12))" } ?? (backend.error == nil ? "no main" : "unreachable")
                    print("backend \(backend.repository): \(role), circuit \(backend.circuit), \(main)"
                          + (backend.error.map { ": \(UntrustedText.shown($0, limit: 160))" } ?? ""))
                }
                let byPriority = TaskPriority.allCases.compactMap { p in counts.queuedByPriority[p.rawValue].map { "\(p.rawValue) \($0)" } }
                func folder(_ name: String, _ count: Int) -> String {
                    "\(name) \(count)" + (counts.archived[name].map { " (+\($0) archived)" } ?? "")
                }
                print("queued \(counts.queued)\(byPriority.isEmpty ? "" : " (" + byPriority.joined(separator: ", ") + ")")  in_progress \(counts.inProgress)  "
                      + [folder("completed", counts.completed), folder("failed", counts.failed), folder("rejected", counts.rejected)].joined(separator: "  "))
                print("unfolded: \(counts.claims) claims, \(counts.results) results; late results \(counts.late)")
                if counts.unplaceable + counts.setAside > 0 {
                    print("unplaceable queue files: \(counts.unplaceable) waiting for the fold, \(counts.setAside) set aside in tasks/rejected/unplaced/ (each with a .reason)")
                }
                // Claim and node records are whatever a repository writer pushed (docs/THREATS.md, T13).
                func shown(_ text: String) -> String { UntrustedText.shown(text, limit: 80) }
                if !counts.unknownFields.isEmpty {
                    let listed = counts.unknownFields.prefix(8).map {
                        "\(UntrustedText.quoted($0.field, limit: 32)) (\($0.queuedTasks) task\($0.queuedTasks == 1 ? "" : "s"), e.g. \(shown($0.exampleTask)))"
                    }
                    let more = counts.unknownFields.count > 8 ? " and \(counts.unknownFields.count - 8) more" : ""
                    print("unknown task fields, kept and reported in each result: \(listed.joined(separator: ", "))\(more)")
                }
                if counts.unknownFieldsUnscanned > 0 {
                    print("unknown task fields: \(counts.unknownFieldsUnscanned) queued files past the first \(GridStatus.unknownFieldScanLimit) not read")
                }
                for task in counts.running {
                    if task.state == "released" {
                        print("released \(shown(task.taskID)) by \(shown(task.nodeID)) (attempt \(task.attempt)): runnable now")
                    } else {
                        print("running \(shown(task.taskID)) for \(task.shownPrincipal) on \(shown(task.nodeID)) (attempt \(task.attempt)), lease until \(shown(task.leaseUntil))\(task.expired ? " EXPIRED" : "")"
                              + (task.progress.map { ", progress \(shown($0))" } ?? "") + (task.checkpointed ? ", checkpointed" : ""))
                    }
                }
                if running > counts.running.count {
                    print("… \(running - counts.running.count) more running or released tasks (dgrid status --limit 0 lists all)")
                }
                if counts.nodeRecords.isEmpty { print("nodes: none") }
                for node in counts.nodeRecords {
                    var health = node.shownReason.map { " UNHEALTHY: \(shown($0))" } ?? ""
                    if let circuit = node.gitCircuit, circuit != GitCircuitBreaker.State.closed.rawValue { health += ", Git circuit \(circuit)" }
                    print("node \(shown(node.nodeID)) \(shown(node.status)), \(node.slots) slots, last heartbeat \(shown(node.lastHeartbeat))\(health)")
                }
                if nodes > counts.nodeRecords.count {
                    print("… \(nodes - counts.nodeRecords.count) more nodes (dgrid status --limit 0 lists all)")
                }
            }
        } catch {
            ImageCLI.fail(error)
        }
    }
}

struct GridResultCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "result", abstract: VerbAbstract.gridResult,
        discussion: "Exit status: the task's, 3 when it has no result yet.")

    @OptionGroup var grid: GridOptions

    @Argument(help: ArgumentHelp("The task id.", valueName: "TASK_ID"))
    var taskID: String

    @Flag(name: .long, help: "Print the result record.")
    var json = false

    @Option(name: .long, help: ArgumentHelp("Write the task's artifacts (its /output files) under DIR, each checked against its digest first.", valueName: "DIR"))
    var download: String?

    @Option(name: .long, help: ArgumentHelp("With --download: a registry repository registry artifacts may be fetched from (repeatable); default $DGRID_ARTIFACT_REGISTRY. Any other is refused: records are anyone's to push.", valueName: "HOST[:PORT]/PATH"))
    var artifactRegistry: [String] = []

    func run() throws {
        let connection = grid.connect()
        let found: (record: ResultRecord, bytes: [UInt8], folded: Bool)?
        do {
            found = try GridStatus(connection: connection).result(of: taskID)
        } catch {
            ImageCLI.fail(error)
        }
        guard let found else {
            ImageCLI.note("task \(UntrustedText.shown(taskID)) has no result yet")
            throw ExitCode(3)
        }
        if let download {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: download, isDirectory: &isDirectory), isDirectory.boolValue else {
                ImageCLI.fail(GridError.local("\(download): no such directory; create it first"))
            }
            let failures: [(path: String, failure: ArtifactFetch.Failure)]
            do {
                let trusted = try ArtifactFetch.trustedRegistries(flags: artifactRegistry, environment: ProcessInfo.processInfo.environment)
                failures = try ArtifactFetch(connection: connection, trustedRegistries: trusted).download(found.record, into: download)
            } catch {
                ImageCLI.fail(error)
            }
            for (path, failure) in failures { ImageCLI.note("artifact \(UntrustedText.quoted(path)): \(failure)") }
            let total = found.record.artifacts.count + (found.record.stdoutArtifact == nil ? 0 : 1) + (found.record.stderrArtifact == nil ? 0 : 1)
            ImageCLI.note("\(total - failures.count) of \(total) artifacts written under \(download)"
                          + (found.record.artifactsSkipped.isEmpty ? "" : "; not kept by the worker: "
                             + found.record.artifactsSkipped.sorted { $0.key < $1.key }.map { "\($0.value) \(UntrustedText.shown($0.key))" }.joined(separator: ", ")))
            throw ExitCode(failures.isEmpty ? 0 : 1)
        }
        if json {
            // The record as stored, as JSON: C1, bidi and zero-width characters escaped (the same value).
            let text = UntrustedText.jsonSafe(String(decoding: found.bytes, as: UTF8.self))
            FileDescriptorWriter.write(Array(text.utf8) + (text.hasSuffix("\n") ? [] : [10]), to: 1)
        } else {
            let stdout = Array(found.record.stdout.utf8), stderr = Array(found.record.stderr.utf8)
            FileDescriptorWriter.write(stdout, to: 1)
            FileDescriptorWriter.write(stderr + NoteLineStart.separator(afterStdout: stdout, stderr: stderr), to: 2)
            let record = found.record
            ImageCLI.note("\(UntrustedText.shown(record.taskID)): \(record.status.rawValue), exit \(record.exitCode) on \(UntrustedText.shown(record.nodeID, limit: 80))\(found.folded ? "" : " (not folded yet)")")
            for earlier in record.previousAttempts { ImageCLI.note("earlier \(UntrustedText.shown(earlier.summary))") }
        }
        throw ExitCode(found.record.exitCode == 0 ? 0 : 1)
    }
}
