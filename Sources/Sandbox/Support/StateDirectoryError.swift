import Glibc

/// Why the state directory, or one of dgrid's directories in it, cannot be used.
/// Everything dgrid keeps there (image layers, compiled seccomp filters, grid
/// mirrors, run trees) is trusted on the way back in, so a directory
/// another user could write or swap is refused rather than used.
public struct StateDirectoryError: Error, Equatable, CustomStringConvertible {
    public enum Problem: Equatable, Sendable {
        /// A call failed (mkdir, open, stat, readlink) with this errno.
        case system(errno: Int32)
        /// The state directory or one of dgrid's directories in it is a symlink.
        case symbolicLink
        /// Something other than a directory where one is needed.
        case notADirectory
        /// One of dgrid's directories belongs to another user.
        case ownedByAnotherUser(uid: UInt32)
        /// One of dgrid's directories is writable by its group or by others.
        case writableByOthers(mode: UInt32)
        /// A parent directory that another user (not root) owns, or that its group or
        /// others can write without the sticky bit: whoever that is could swap the
        /// state directory for their own.
        case untrustedParent(uid: UInt32, mode: UInt32)
        /// A symlink among the parents that belongs to another user (not root).
        case untrustedSymlink(uid: UInt32)
        /// More than 40 symlinks on the way, as the kernel's own ELOOP limit.
        case tooManySymlinks
        /// A relative name with an empty, `.` or `..` component.
        case invalidName(String)
    }

    public let path: String
    public let problem: Problem

    public init(path: String, problem: Problem) {
        self.path = path
        self.problem = problem
    }

    public init(path: String, errno: Int32) {
        self.init(path: path, problem: .system(errno: errno))
    }

    /// The errno closest to the problem, for callers that report one.
    public var errno: Int32 {
        switch problem {
        case .system(let code): return code
        case .symbolicLink, .tooManySymlinks: return ELOOP
        case .notADirectory: return ENOTDIR
        case .ownedByAnotherUser, .writableByOthers, .untrustedParent, .untrustedSymlink: return EPERM
        case .invalidName: return EINVAL
        }
    }

    public var description: String {
        let escape = "; or set DGRID_HOME to a directory of your own"
        switch problem {
        case .system(let code):
            return "cannot create state directory \(path): \(String(cString: strerror(code))); set DGRID_HOME to a writable directory"
        case .symbolicLink:
            return "state directory \(path) is a symbolic link, which dgrid does not follow (whoever can change it "
                + "decides where dgrid's state goes): set DGRID_HOME to the directory it points to, or replace the link with a directory"
        case .notADirectory:
            return "state directory \(path) is not a directory: move it away\(escape)"
        case .ownedByAnotherUser(let uid):
            return "state directory \(path) belongs to uid \(uid), not to this user (uid \(geteuid())); refused: "
                + "remove it or chown it to this user\(escape)"
        case .writableByOthers(let mode):
            return "state directory \(path) is writable by group or others (mode \(Self.octal(mode))); refused: "
                + "check its contents, then `chmod 700 \(path)`\(escape)"
        case .untrustedParent(let uid, let mode):
            return "parent \(path) of the state directory belongs to uid \(uid) with mode \(Self.octal(mode)): "
                + "another user could replace the state directory; refused: make it owned by root or this user and not "
                + "writable by others (or sticky, like /tmp)\(escape)"
        case .untrustedSymlink(let uid):
            return "symbolic link \(path) on the way to the state directory belongs to uid \(uid), who could point it "
                + "elsewhere; refused: set DGRID_HOME to the resolved path"
        case .tooManySymlinks:
            return "state directory \(path): too many symbolic links on the way; set DGRID_HOME to the resolved path"
        case .invalidName(let name):
            return "state directory \(path): '\(name)' is not a plain relative name"
        }
    }

    private static func octal(_ mode: UInt32) -> String {
        let digits = String(mode & 0o7777, radix: 8)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }
}
