/// The author and committer of ledger commits.
public struct LedgerSignature: Sendable, Equatable {
    public var name: String
    public var email: String

    public init(name: String, email: String) {
        self.name = name
        self.email = email
    }

    /// "dgrid <dgrid@localhost>", used unless a caller names someone else.
    public static let dgrid = LedgerSignature(name: "dgrid", email: "dgrid@localhost")
}
