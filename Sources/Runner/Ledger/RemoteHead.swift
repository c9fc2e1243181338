/// What the remote's HEAD names, which is what `git clone` checks out: a grid
/// lives on main, but `git init --bare` names `master` (Git's default), so
/// clones of such a grid came out empty. `dgrid init` points HEAD at main
/// where it can (docs/ARCHITECTURE.md §6) and says how where it cannot.
public enum RemoteHead: Equatable, Sendable {
    /// HEAD names the grid's branch already.
    case onGridBranch
    /// HEAD named a branch with no commits (`git init --bare`'s master); now the grid's branch.
    case moved(from: String)
    /// HEAD names another branch that has commits: someone's choice, left alone.
    case leftOnOtherBranch(String)
    /// A server's HEAD, which only its administrator can move: it does not resolve to the grid's branch.
    case serverNotOnGridBranch
}
