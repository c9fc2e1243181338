/// What `dgrid-registry server-date` prints for `dgrid doctor`'s clock check
/// (docs/ARCHITECTURE.md §12): the `Date` header an http(s) Git server sent
/// with its ref advertisement, and this host's clock (seconds since the epoch)
/// just before the request went out and when the answer's head arrived. The
/// grid's binary links no HTTP stack, so the HTTP binary reads it; beside the
/// artifact helper's messages because both binaries import this module.
public struct ServerDateReading: Codable, Sendable, Equatable {
    /// The HTTP status (a 401 carries a Date too: no credential is sent).
    public let status: Int
    /// The header as sent, nil when the server sent none.
    public let date: String?
    public let sentAt: Double
    public let receivedAt: Double

    public init(status: Int, date: String?, sentAt: Double, receivedAt: Double) {
        self.status = status
        self.date = date
        self.sentAt = sentAt
        self.receivedAt = receivedAt
    }

    enum CodingKeys: String, CodingKey {
        case status, date, sentAt = "sent_at", receivedAt = "received_at"
    }
}
