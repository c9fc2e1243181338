import Glibc

/// `dgrid-remote`, the binary beside `dgrid` that links the registry client
/// and libgit2. `dgrid` stays small because every byte of it is paid again on
/// each `sandbox run` start; the verbs that reach the network go there.
package enum RemoteBinary {
    /// Command-line prefixes handed over whole.
    static let verbs: [[String]] = [["image", "pull"], ["init"], ["submit"], ["worker"], ["status"], ["result"], ["fold"]]

    static var verbList: String { verbs.map { $0.joined(separator: " ") }.joined(separator: ", ") }

    package static let fileName = "dgrid-remote"

    static func handles(_ arguments: [String]) -> Bool {
        verbs.contains { arguments.starts(with: $0) }
    }

    /// Replaces this process with `dgrid-remote ARGUMENTS`; one line and exit 1 when it cannot.
    package static func exec(_ arguments: [String]) -> Never {
        let path = siblingPath()
        let argv = [path] + arguments
        var cStrings = argv.map { strdup($0) }
        cStrings.append(nil)
        execv(path, cStrings)
        let reason = String(cString: strerror(errno))
        FileDescriptorWriter.write(Array("dgrid: cannot run \(path) for `\(arguments.prefix(2).joined(separator: " "))`: \(reason); install \(fileName) beside dgrid\n".utf8), to: STDERR_FILENO)
        Glibc.exit(1)
    }

    /// `dgrid-remote` in the directory of this executable (/proc/self/exe, so
    /// neither PATH nor a symlinked argv[0] can substitute another binary).
    static func siblingPath() -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard n > 0 else { return fileName }
        let exe = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let directory = exe.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        return directory + "/" + fileName
    }
}
