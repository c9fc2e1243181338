import Glibc
import Sandbox

/// The binaries beside `dgrid` that carry the network: `dgrid-registry`
/// (async-http-client and NIO, for registries) and `dgrid-grid` (libgit2,
/// for the grid). `dgrid` stays small because every byte of it is paid again
/// on each `sandbox run` start; a worker stays lean because it carries no
/// HTTP stack. `dgrid` execs the right one for these verbs.
package enum SiblingBinary {
    package static let registryFileName = SiblingPath.registryHelper
    package static let gridFileName = "dgrid-grid"

    /// Command-line prefixes handed over whole, and to which binary: the verbs
    /// `dgrid`'s tree lists as `SiblingVerb`s.
    static let verbs: [(prefix: [String], fileName: String)] =
        [(["image", "pull"], registryFileName)]
        + GridVerbs.all.compactMap { verb in verb.configuration.commandName.map { ([$0], gridFileName) } }


    /// The binary that runs `arguments`, or nil when `dgrid` runs them itself.
    /// `help VERB…` goes to the verb's binary too, whose tree has the verb's options.
    static func fileName(for arguments: [String]) -> String? {
        let verb = arguments.first == "help" ? Array(arguments.dropFirst()) : arguments
        return verbs.first { verb.starts(with: $0.prefix) }?.fileName
    }

    /// Replaces this process with `FILENAME ARGUMENTS` (FILENAME beside this
    /// executable); one line and exit 1 when it cannot.
    package static func exec(_ arguments: [String], in fileName: String) -> Never {
        let path = siblingPath(fileName)
        let argv = [path] + arguments
        var cStrings = argv.map { strdup($0) }
        cStrings.append(nil)
        execv(path, cStrings)
        let reason = String(cString: strerror(errno))
        FileDescriptorWriter.write(Array("dgrid: cannot run \(path) for `\(arguments.prefix(2).joined(separator: " "))`: \(reason); install \(fileName) beside dgrid\n".utf8), to: STDERR_FILENO)
        Glibc.exit(1)
    }

    /// `fileName` in the directory of this executable (`SiblingPath`).
    static func siblingPath(_ fileName: String) -> String {
        SiblingPath.beside(fileName)
    }
}
