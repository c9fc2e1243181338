import ArgumentParser

/// A verb `dgrid` lists in its help but another binary runs (SiblingBinary):
/// an entry in `dgrid`'s command tree, so `dgrid --help` names every verb with
/// its one line. `DGrid.runFront` execs the binary before ArgumentParser sees
/// these verbs (and `dgrid help VERB` too), so the entry holds no options;
/// should a spelling reach `run` anyway, it hands over the same way.
protocol SiblingVerb: ParsableCommand {
    static var binaryFileName: String { get }
}

extension SiblingVerb {
    func run() throws {
        SiblingBinary.exec(Array(CommandLine.arguments.dropFirst()), in: Self.binaryFileName)
    }
}

/// A grid verb: run by `dgrid-grid`.
protocol GridVerb: SiblingVerb {}

extension GridVerb {
    static var binaryFileName: String { SiblingBinary.gridFileName }
}

/// The grid verbs, run by `dgrid-grid`.
enum GridVerbs {
    static let all: [ParsableCommand.Type] = [Init.self, Submit.self, Worker.self, Status.self, Result.self, Fold.self,
                                              Sign.self, Verify.self, Audit.self, Quota.self, Dag.self,
                                              Results.self, Archive.self, Compact.self,
                                              Doctor.self, Metrics.self, Dashboard.self, Node.self, Reputation.self]

    struct Init: GridVerb {
        static let configuration = CommandConfiguration(commandName: "init", abstract: VerbAbstract.gridInit)
    }

    struct Submit: GridVerb {
        static let configuration = CommandConfiguration(commandName: "submit", abstract: VerbAbstract.gridSubmit)
    }

    struct Worker: GridVerb {
        static let configuration = CommandConfiguration(commandName: "worker", abstract: VerbAbstract.gridWorker)
    }

    struct Status: GridVerb {
        static let configuration = CommandConfiguration(commandName: "status", abstract: VerbAbstract.gridStatus)
    }

    struct Result: GridVerb {
        static let configuration = CommandConfiguration(commandName: "result", abstract: VerbAbstract.gridResult)
    }

    struct Node: GridVerb {
        static let configuration = CommandConfiguration(commandName: "node", abstract: VerbAbstract.gridNode)
    }

    struct Reputation: GridVerb {
        static let configuration = CommandConfiguration(commandName: "reputation", abstract: VerbAbstract.gridReputation)
    }

    struct Fold: GridVerb {
        static let configuration = CommandConfiguration(commandName: "fold", abstract: VerbAbstract.gridFold)
    }

    struct Results: GridVerb {
        static let configuration = CommandConfiguration(commandName: "results", abstract: VerbAbstract.gridResults)
    }

    struct Archive: GridVerb {
        static let configuration = CommandConfiguration(commandName: "archive", abstract: VerbAbstract.gridArchive)
    }

    struct Compact: GridVerb {
        static let configuration = CommandConfiguration(commandName: "compact", abstract: VerbAbstract.gridCompact)
    }

    struct Dag: GridVerb {
        static let configuration = CommandConfiguration(commandName: "dag", abstract: VerbAbstract.gridDag)
    }

    struct Sign: GridVerb {
        static let configuration = CommandConfiguration(commandName: "sign", abstract: VerbAbstract.gridSign)
    }

    struct Verify: GridVerb {
        static let configuration = CommandConfiguration(commandName: "verify", abstract: VerbAbstract.gridVerify)
    }

    struct Audit: GridVerb {
        static let configuration = CommandConfiguration(commandName: "audit", abstract: VerbAbstract.gridAudit)
    }

    struct Doctor: GridVerb {
        static let configuration = CommandConfiguration(commandName: "doctor", abstract: VerbAbstract.gridDoctor)
    }

    struct Metrics: GridVerb {
        static let configuration = CommandConfiguration(commandName: "metrics", abstract: VerbAbstract.gridMetrics)
    }

    struct Quota: GridVerb {
        static let configuration = CommandConfiguration(commandName: "quota", abstract: VerbAbstract.gridQuota)
    }

    struct Dashboard: GridVerb {
        static let configuration = CommandConfiguration(commandName: "dashboard", abstract: VerbAbstract.gridDashboard)
    }
}

/// `image pull`, run by `dgrid-registry`.
struct ImagePullVerb: SiblingVerb {
    static let binaryFileName = SiblingBinary.registryFileName
    static let configuration = CommandConfiguration(commandName: "pull", abstract: VerbAbstract.imagePull)
}
