/// What went wrong talking to a grid, in one line that says what to do.
public enum GridError: Error, CustomStringConvertible {
    /// The repository has no main branch yet.
    case notInitialised(repository: String)
    /// A Git operation failed (network, refused push, bad object).
    case ledger(LedgerError)
    /// A task file given to `submit` is invalid, or its id is taken.
    case invalidTask(path: String, reason: String)
    case duplicateTask(taskID: String, whereFound: String)
    /// main kept moving under us (other submitters or folders); retry later.
    case contention(operation: String, attempts: Int)
    case local(String)
    /// The artifact registry could not be reached (or its helper not run): this host's fault, not the task's.
    case artifactRegistry(String)
    /// A claim, result or heartbeat commit seen in a ref listing is no longer on
    /// the remote (the ref moved or was folded since): skip it this round.
    case objectGone(commit: String)

    public var description: String {
        switch self {
        case .notInitialised(let repository):
            return "grid \(repository) has no main branch: run `dgrid init --repo \(repository)` first"
        case .ledger(let error):
            return "\(error)"
        case .invalidTask(let path, let reason):
            return "task \(path) refused: \(reason); nothing was submitted"
        case .duplicateTask(let taskID, let whereFound):
            return "task id \(taskID) is already in the grid (\(whereFound)); choose another task_id; nothing was submitted"
        case .contention(let operation, let attempts):
            return "\(operation): main moved under us \(attempts) times in a row; try again"
        case .local(let message):
            return message
        case .artifactRegistry(let message):
            return message
        case .objectGone(let commit):
            return "commit \(commit) left the remote since it was listed; the next round sees the new state"
        }
    }
}
