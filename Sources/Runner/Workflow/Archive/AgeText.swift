import Foundation

/// Ages as people write them on a command line: `90s`, `30m`, `12h`, `7d`, `2w`.
public enum AgeText {
    /// Seconds, or nil when `text` is not a whole number followed by one unit.
    public static func seconds(_ text: String) -> TimeInterval? {
        guard let unit = text.last, let number = Int(text.dropLast()), number >= 0 else { return nil }
        let scale: Int
        switch unit {
        case "s": scale = 1
        case "m": scale = 60
        case "h": scale = 3_600
        case "d": scale = 86_400
        case "w": scale = 604_800
        default: return nil
        }
        let (product, overflow) = number.multipliedReportingOverflow(by: scale)
        return overflow ? nil : TimeInterval(product)
    }
}
