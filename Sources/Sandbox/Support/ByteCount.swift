/// A byte size parsed once at the edge: "512", "64k", "256m", "1.5g" (binary units).
public struct ByteCount: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let bytes: UInt64

    public init(bytes: UInt64) {
        self.bytes = bytes
    }

    /// Parses `text`; suffixes b, k, m, g, t (optionally followed by "b" or "ib"), case-insensitive.
    public init(parsing text: String) throws(ValueError) {
        let lowered = text.trimmingWhitespace().lowercased()
        var number = Substring(lowered)
        var multiplier: Double = 1
        for suffix in ["ib", "b"] where number.hasSuffix(suffix) && number.count > suffix.count {
            let stripped = number.dropLast(suffix.count)
            if let last = stripped.last, "kmgt".contains(last) || suffix == "b" {
                number = stripped
                break
            }
        }
        if let last = number.last, let power = "kmgt".firstIndex(of: last) {
            multiplier = pow1024("kmgt".distance(from: "kmgt".startIndex, to: power) + 1)
            number = number.dropLast()
        }
        guard !number.isEmpty, number.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }),
              let value = Double(number), value.isFinite, value >= 0 else {
            throw ValueError(kind: "size", text: text, hint: "use a number with an optional unit, e.g. 256m, 1g, 65536")
        }
        let total = value * multiplier
        guard total < 1.8e19 else {
            throw ValueError(kind: "size", text: text, hint: "too large")
        }
        bytes = UInt64(total.rounded(.down))
    }

    public static func < (a: ByteCount, b: ByteCount) -> Bool { a.bytes < b.bytes }

    public var description: String {
        let units: [(UInt64, String)] = [(1 << 40, "t"), (1 << 30, "g"), (1 << 20, "m"), (1 << 10, "k")]
        for (size, unit) in units where bytes >= size && bytes % size == 0 {
            return "\(bytes / size)\(unit)"
        }
        return "\(bytes)"
    }
}

private func pow1024(_ n: Int) -> Double {
    (0..<n).reduce(1.0) { acc, _ in acc * 1024 }
}

/// A CPU quota in CPUs, e.g. 0.5 or 1.5; at least 0.01.
public struct CPUQuota: Sendable, Hashable, CustomStringConvertible {
    public let cpus: Double

    public init(cpus: Double) throws(ValueError) {
        guard cpus.isFinite, cpus >= 0.01, cpus <= 4096 else {
            throw ValueError(kind: "CPU quota", text: "\(cpus)", hint: "use a number of CPUs between 0.01 and 4096, e.g. 1.5")
        }
        self.cpus = cpus
    }

    public init(parsing text: String) throws(ValueError) {
        guard let value = Double(text.trimmingWhitespace()) else {
            throw ValueError(kind: "CPU quota", text: text, hint: "use a number of CPUs, e.g. 0.5 or 2")
        }
        try self.init(cpus: value)
    }

    /// The CFS quota for a given period: cpus × period.
    public func quotaMicroseconds(period: UInt64 = 100_000) -> UInt64 {
        UInt64((cpus * Double(period)).rounded())
    }

    public var description: String { String(cpus) }
}

/// A value from the user that did not parse: says which kind, what was given, and what to do.
public struct ValueError: Error, Equatable, CustomStringConvertible {
    public let kind: String
    public let text: String
    public let hint: String

    public init(kind: String, text: String, hint: String) {
        self.kind = kind
        self.text = text
        self.hint = hint
    }

    public var description: String { "invalid \(kind) '\(text)': \(hint)" }
}

extension String {
    package func trimmingWhitespace() -> String {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s = s.dropFirst() }
        while let l = s.last, l.isWhitespace { s = s.dropLast() }
        return String(s)
    }
}
