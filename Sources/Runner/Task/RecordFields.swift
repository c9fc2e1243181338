/// Lenient typed access to a record's JSON object (result, claim, node records):
/// a missing or mistyped optional field reads as its default, so records from
/// older or newer workers still load. Callers decide which fields are required.
struct RecordFields {
    let members: [String: LedgerJSON.Value]

    /// Records are read whole; anything that is not a JSON object is no record.
    init?(_ bytes: [UInt8]) {
        guard case .success(.object(let members)) = LedgerJSON.parse(bytes) else { return nil }
        self.members = members
    }

    /// A nested object's fields (an entry of a record's list).
    init(members: [String: LedgerJSON.Value]) {
        self.members = members
    }

    /// The strings of an array of strings; [] when absent or of another shape.
    func stringList(_ key: String) -> [String] {
        guard case .array(let items)? = members[key] else { return [] }
        return items.compactMap { if case .string(let text) = $0 { return text } else { return nil } }
    }

    func string(_ key: String) -> String? {
        if case .string(let text)? = members[key] { return text }
        return nil
    }

    func integer(_ key: String) -> Int64? {
        if case .number(let number)? = members[key] { return number.integer }
        return nil
    }

    func unsigned(_ key: String) -> UInt64? {
        if case .number(let number)? = members[key] { return number.unsigned }
        return nil
    }

    func double(_ key: String) -> Double? {
        if case .number(let number)? = members[key], number.double.isFinite { return number.double }
        return nil
    }

    func bool(_ key: String) -> Bool? {
        if case .bool(let flag)? = members[key] { return flag }
        return nil
    }

    func int32(_ key: String) -> Int32? {
        integer(key).flatMap { Int32(exactly: $0) }
    }

    func int(_ key: String) -> Int? {
        integer(key).flatMap { Int(exactly: $0) }
    }
}

/// Building a record's JSON object; nil optionals are written as `null` so every
/// record has the same keys and `jq .signal` never errors.
extension LedgerJSON.Value {
    static func text(_ value: String?) -> Self { value.map { .string($0) } ?? .null }
    static func int(_ value: Int64?) -> Self { value.map { .number(.init($0)) } ?? .null }
    static func uint(_ value: UInt64?) -> Self { value.map { .number(.init($0)) } ?? .null }
    static func real(_ value: Double?) -> Self { value.flatMap { LedgerJSON.Number($0) }.map { .number($0) } ?? .null }
}
