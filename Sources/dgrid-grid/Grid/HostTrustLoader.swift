import DGridCLI
import Foundation
import Runner
import Sandbox

/// This host's trust for a CLI verb (docs/ARCHITECTURE.md §9), as its workers hold it:
/// the trust files (a file that cannot be used stops the verb, naming it),
/// and, for a grid, main's fleet policy beneath them.
enum HostTrustLoader {
    static func load(state: StateDirectory = StateDirectory.forThisUser()) -> HostTrust {
        do {
            return try HostTrust.load(state: state)
        } catch {
            ImageCLI.fail(GridError.local("\(error)"))
        }
    }

    /// `trust` with `connection`'s fleet policy beneath it; a refused fleet policy is said on stderr.
    static func onGrid(_ trust: HostTrust, connection: GridConnection) throws(GridError) -> HostTrust {
        let pin = PolicySerialPin(path: try connection.settings.policySerialPinPath())
        let (effective, outcome) = try GridStatus(connection: connection).effectiveTrust(trust, pin: pin)
        if case .refused = outcome { FileHandle.standardError.write(Data("dgrid: \(UntrustedText.lineSafe("\(outcome)"))\n".utf8)) }
        return effective
    }
}
