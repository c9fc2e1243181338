/// The `resources.memory` field: "256m", "1g", "1.5g", "512k", "65536" or a JSON
/// integer of bytes. Units are powers of 1024, case-insensitive, optionally followed
/// by "b" or "ib" — the same grammar as `dgrid sandbox run --memory`.
enum TaskMemory {
    static func bytes(_ text: String) -> UInt64? {
        var number = Substring(text.lowercased())
        for suffix in ["ib", "b"] where number.hasSuffix(suffix) {
            let stripped = number.dropLast(suffix.count)
            // "ib" needs a unit before it ("1kib"); a bare "b" means bytes ("512b").
            if suffix == "b" || stripped.last.map({ "kmgt".contains($0) }) == true {
                number = stripped
                break
            }
        }
        var multiplier: Double = 1
        if let last = number.last, let power = ["k", "m", "g", "t"].firstIndex(of: last) {
            multiplier = (0...power).reduce(1.0) { value, _ in value * 1024 }
            number = number.dropLast()
        }
        // Only digits and one optional '.': Double() alone would take "inf", "0x10", "1e3".
        guard !number.isEmpty, number.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ".") }),
              number.filter({ $0 == "." }).count <= 1, number.first != ".", number.last != ".",
              let value = Double(number) else { return nil }
        let total = (value * multiplier).rounded(.down)
        guard total.isFinite, total < 1.8e19 else { return nil }
        return UInt64(total)
    }
}
