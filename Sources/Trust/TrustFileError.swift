/// A host trust file that cannot be used as it is: which file, which line
/// where it applies, what is wrong and how to fix it.
public struct TrustFileError: Error, Equatable, CustomStringConvertible, Sendable {
    public enum Problem: Error, Equatable, Sendable {
        case syntax(String)
        /// Writable by someone other than its owner, owned by another user,
        /// not a regular file, or a symlink: anyone who can write it decides what runs.
        case permissions(String)
        case unreadable(String)
    }

    public let file: String
    public let line: Int?
    public let problem: Problem

    public init(file: String, line: Int? = nil, problem: Problem) {
        self.file = file
        self.line = line
        self.problem = problem
    }

    public var description: String {
        let place = line.map { "\(file):\($0)" } ?? file
        switch problem {
        case .syntax(let why): return "\(place): \(why)"
        case .permissions(let why): return "\(place): \(why); trust files must be regular files owned by this user (or root) and writable by nobody else (chmod go-w)"
        case .unreadable(let why): return "\(place): cannot read: \(why)"
        }
    }
}

/// The lines of a trust file that say something, with their numbers: blank
/// lines and `#` comments dropped, leading blanks trimmed (OpenSSH's reading).
enum TrustFileLines {
    static func significant(_ text: String) -> [(number: Int, text: Substring)] {
        text.split(separator: "\n", omittingEmptySubsequences: false).enumerated().compactMap { index, raw in
            let line = raw.drop(while: { $0 == " " || $0 == "\t" })
            if line.hasPrefix("#") || line.allSatisfy({ $0 == " " || $0 == "\t" || $0 == "\r" }) { return nil }
            return (index + 1, line)
        }
    }
}
