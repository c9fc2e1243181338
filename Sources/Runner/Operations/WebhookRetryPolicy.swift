/// How long one webhook event is tried (docs/ARCHITECTURE.md §12): exponential
/// backoff with jitter, bounded by attempts and by total time, so a receiver
/// that hangs or answers 500 costs the delivery thread a known worst case and
/// the queue behind it moves on. Each attempt has its own timeout.
public struct WebhookRetryPolicy: Sendable, Equatable {
    public var maxAttempts = 6
    /// The wait before the second attempt; it doubles per attempt up to `ceilingSeconds`.
    public var baseSeconds = 0.5
    public var ceilingSeconds = 30.0
    /// No attempt starts later than this after the first: the event is given up.
    public var totalSeconds = 120.0
    /// One POST, connection to answer.
    public var attemptTimeoutSeconds = 10.0

    public init() {}

    /// The wait after attempt `attempt` (1-based) failed: half the backoff fixed, half random
    /// ("equal jitter"), so receivers coming back are not hit by every sender at once,
    /// and a retry is never sooner than half the backoff. `unit` is uniform in 0..<1.
    public func delay(afterAttempt attempt: Int, unit: Double) -> Double {
        let exponent = Double(max(0, min(attempt - 1, 30)))
        let backoff = min(ceilingSeconds, baseSeconds * pow2(exponent))
        return backoff / 2 + backoff / 2 * min(max(unit, 0), 1)
    }

    private func pow2(_ exponent: Double) -> Double {
        var value = 1.0
        for _ in 0..<Int(exponent) { value *= 2 }
        return value
    }

    /// Whether an answer with this HTTP status is worth another attempt: 5xx, 408,
    /// 425 and 429 are the receiver's passing trouble; any other 4xx (a bad signature,
    /// an unknown path) and 3xx (redirects are not followed) will not change.
    public static func isRetryable(status: Int) -> Bool {
        status >= 500 || status == 408 || status == 425 || status == 429
    }
}
