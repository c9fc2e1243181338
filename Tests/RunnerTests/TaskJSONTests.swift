import Testing
@testable import Runner
import TestSupport

@Suite("Ledger JSON reader and writer", .unit)
struct TaskJSONTests {
    @Test func readsEveryKind() throws {
        let value = try LedgerJSON.parse(Array(#" {"a":[true,false,null,-1.5e2,"\u00e9\ud83d\ude00\/\n"],"b":{}} "#.utf8)).get()
        #expect(value == .object([
            "a": .array([.bool(true), .bool(false), .null, .number(.init(literal: "-1.5e2")), .string("é😀/\n")]),
            "b": .object([:]),
        ]))
    }

    @Test func integersStayExact() {
        #expect(LedgerJSON.Number(literal: "9223372036854775807").integer == Int64.max)
        #expect(LedgerJSON.Number(literal: "9223372036854775808").integer == nil)
        #expect(LedgerJSON.Number(literal: "18446744073709551615").unsigned == UInt64.max)
        #expect(LedgerJSON.Number(literal: "30.0").integer == 30)
        #expect(LedgerJSON.Number(literal: "-0").integer == 0)
        // Decided on the digits: a Double would round these to integers.
        #expect(LedgerJSON.Number(literal: "9007199254740993.0").integer == 9_007_199_254_740_993)
        #expect(LedgerJSON.Number(literal: "6000000000000000.4").integer == nil)
        #expect(LedgerJSON.Number(literal: "1.5e1").integer == 15)
        #expect(LedgerJSON.Number(literal: "1500E-2").integer == 15)
        #expect(LedgerJSON.Number(literal: "1.55e1").integer == nil)
        #expect(LedgerJSON.Number(literal: "0.0").integer == 0)
        #expect(LedgerJSON.Number(literal: "-2.000e+3").integer == -2000)
        #expect(LedgerJSON.Number(literal: "1e400").integer == nil)
        #expect(LedgerJSON.Number(literal: "1e-400").integer == nil)
        #expect(LedgerJSON.Number(literal: "-1").unsigned == nil)
    }

    @Test(arguments: [
        "", " ", "{", "}", "[1,]", "[01]", "[1.]", "[.5]", "[+1]", "[1e]", "[\"\\x\"]", "[\"\\u12\"]",
        "[\"\\udc00\"]", "[\"\\ud800x\"]", "tru", "nul", "[1 2]", "{\"a\" 1}", "{1:2}", "{\"a\":1,}",
        "[Infinity]", "\"a\tb\"",
    ])
    func refusesInvalidJSON(text: String) {
        #expect(throws: LedgerJSON.SyntaxError.self) { try LedgerJSON.parse(Array(text.utf8)).get() }
    }

    @Test func depthLimitHoldsAndDeepBombsDoNotCrash() {
        let ok = String(repeating: "[", count: LedgerJSON.maxDepth) + String(repeating: "]", count: LedgerJSON.maxDepth)
        #expect((try? LedgerJSON.parse(Array(ok.utf8)).get()) != nil)
        let deep = String(repeating: "[", count: LedgerJSON.maxDepth + 1) + String(repeating: "]", count: LedgerJSON.maxDepth + 1)
        #expect((try? LedgerJSON.parse(Array(deep.utf8)).get()) == nil)
        let bomb = Array(String(repeating: "[", count: 1_000_000).utf8)
        #expect((try? LedgerJSON.parse(bomb).get()) == nil)
    }

    @Test func writerEscapesAndRoundTrips() throws {
        let value = LedgerJSON.Value.object([
            "b": .string("quote \" backslash \\ nl \n nul \u{0} esc \u{1b} del \u{7f} é"),
            "a": .array([.number(.init(Int64(-3))), .bool(true), .null, .object([:]), .array([])]),
        ])
        let compact = LedgerJSON.compact(value)
        #expect(compact == #"{"a":[-3,true,null,{},[]],"b":"quote \" backslash \\ nl \n nul \u0000 esc \u001b del \u007f é"}"#)
        #expect(try LedgerJSON.parse(LedgerJSON.write(value)).get() == value)
    }

    @Test func nonFiniteDoublesHaveNoJSONForm() {
        #expect(LedgerJSON.Number(Double.infinity) == nil)
        #expect(LedgerJSON.Number(Double.nan) == nil)
        #expect(LedgerJSON.Value.real(.infinity) == .null)
    }

    /// Every prefix and thousands of seeded byte flips of a full task file: the parser
    /// may refuse, but must never crash or accept a task with an invalid id.
    @Test func mutatedTaskFilesNeverCrash() {
        let valid = Array(#"{"task_id":"t-1","script":"echo \u00e9","timeout_seconds":30.0,"resources":{"cpus":1.5,"memory":"1g","pids":9},"env":{"A":"b"},"depends_on":["x"],"x":[{"y":null}]}"#.utf8)
        #expect((try? TaskParser.parse(valid).get()) != nil)
        for end in 0..<valid.count {
            _ = TaskParser.parse(Array(valid[..<end]))
        }
        var seed: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next() -> UInt64 {
            seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return seed >> 33
        }
        let interesting: [UInt8] = Array(#"{}[]\",:0-.eu/"#.utf8) + [0x00, 0x0A, 0x80, 0xC3, 0xFF]
        for _ in 0..<5000 {
            var bytes = valid
            for _ in 0..<(1 + next() % 3) {
                let at = Int(next() % UInt64(bytes.count))
                bytes[at] = next() % 2 == 0 ? interesting[Int(next() % UInt64(interesting.count))] : UInt8(truncatingIfNeeded: next())
            }
            if case .success(let task) = TaskParser.parse(bytes) {
                #expect(TaskParser.isValidTaskID(task.taskID))
                #expect(!task.script.utf8.contains(0))
            }
        }
    }
}
