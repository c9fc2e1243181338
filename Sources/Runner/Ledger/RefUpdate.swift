/// What the remote did with one ref update. `.rejected` is a normal outcome (someone
/// else won the race, the ref moved); failures to talk to the remote are `LedgerError`s.
public enum RefUpdate: Equatable, Sendable {
    case applied
    case rejected(reason: String)
}
