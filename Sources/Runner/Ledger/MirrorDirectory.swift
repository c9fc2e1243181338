import CGit2
#if canImport(Glibc)
import Glibc
#endif

/// Creates or opens the bare mirror. It holds every task file and result of the
/// grid, so its directory is private to this user (0700), like containerd's state
/// directories should have been (CVE-2021-41103).
enum MirrorDirectory {
    static func open(_ path: String, remote: String) throws(LedgerError) -> GitHandle {
        func failure(_ message: String, _ hint: String, code: Int32? = nil) -> LedgerError {
            var gitClass: Int32?
            if let code { gitClass = LibGit2.Failure(code: code).gitClass }
            return LedgerError(.mirror, operation: "open mirror \(path)", remote: remote, message: message,
                               hint: hint, gitClass: gitClass, gitCode: code)
        }
        guard !path.isEmpty else { throw failure("the mirror path is empty", "give a directory path") }
        try createDirectories(path, failure: failure)
        var info = stat()
        guard lstat(path, &info) == 0 else {
            throw failure(String(cString: strerror(errno)), "check the mirror path")
        }
        guard (info.st_mode & S_IFMT) == S_IFDIR else {
            throw failure("not a directory (or a symlink)", "point the mirror at a real directory")
        }
        guard info.st_uid == geteuid() else {
            throw failure("owned by uid \(info.st_uid), not this user", "use a mirror directory this user owns")
        }
        if info.st_mode & 0o777 != 0o700 && chmod(path, 0o700) != 0 {
            throw failure("cannot make it 0700: \(String(cString: strerror(errno)))", "check the directory's permissions")
        }

        var repository: OpaquePointer?
        let flags = GIT_REPOSITORY_OPEN_NO_SEARCH.rawValue | GIT_REPOSITORY_OPEN_BARE.rawValue
        var code = git_repository_open_ext(&repository, path, flags, nil)
        if code == GIT_ENOTFOUND.rawValue {
            code = git_repository_init(&repository, path, 1)
        }
        guard code == 0, let repository else {
            let last = LibGit2.Failure(code: code)
            throw failure(last.message, "remove the directory if it is not a git mirror; dgrid recreates it", code: code)
        }
        return GitHandle(repository) { git_repository_free($0) }
    }

    /// mkdir -p with 0700 for every directory created.
    private static func createDirectories(_ path: String,
                                          failure: (String, String, Int32?) -> LedgerError) throws(LedgerError) {
        var current = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            current += "/" + component
            if mkdir(current, 0o700) != 0 && errno != EEXIST {
                throw failure("cannot create \(current): \(String(cString: strerror(errno)))",
                              "choose a mirror path this user can create", nil)
            }
        }
    }
}
