/// One file change in a ledger commit: `content` nil deletes `path`.
public struct LedgerChange: Sendable {
    public var path: String
    public var content: [UInt8]?

    public init(path: String, content: [UInt8]?) {
        self.path = path
        self.content = content
    }
}
