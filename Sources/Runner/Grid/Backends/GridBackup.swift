/// Another Git server holding the same grid (docs/ARCHITECTURE.md §11, "Several backends"):
/// its URL and the credentials for its transport (a token for http(s), a key for ssh).
public struct GridBackup: Sendable {
    public var repository: String
    public var credentials: GitCredentials

    public init(repository: String, credentials: GitCredentials = .none) {
        self.repository = repository
        self.credentials = credentials
    }
}
