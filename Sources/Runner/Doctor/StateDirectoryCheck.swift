import Sandbox

/// `state_directory`: `$DGRID_HOME` passes the walk every dgrid command makes
/// (`StateDirectory`: this user's, closed to others, no symlink another user
/// controls on the way). Made, as the worker would make it, when missing.
public enum StateDirectoryCheck {
    public static func check(_ state: StateDirectory) -> HostCheck {
        do {
            let run = try state.directory("run")
            return .pass(.stateDirectory, "\(state.path) is this user's and closed to others (\(run) usable)")
        } catch {
            return .fail(.stateDirectory, error.description, fix: fix(error))
        }
    }

    static func fix(_ error: StateDirectoryError) -> String {
        switch error.problem {
        case .writableByOthers: "chmod 700 \(error.path)"
        case .ownedByAnotherUser: "chown the directory to this user, or set DGRID_HOME to a directory of your own"
        case .symbolicLink, .untrustedSymlink, .tooManySymlinks: "set DGRID_HOME to the resolved path"
        case .untrustedParent: "make \(error.path) owned by root or this user and not writable by others, or set DGRID_HOME elsewhere"
        case .notADirectory: "move \(error.path) away, or set DGRID_HOME elsewhere"
        case .system, .invalidName: "set DGRID_HOME to a writable directory of this user"
        }
    }
}
