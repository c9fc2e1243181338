/// The Runner layer (tasks, Git ledger, worker) arrives with the grid issue;
/// for now it only names the version every result record will carry.
public enum RunnerInfo {
    public static let workerVersion = "0.1.0"
}
