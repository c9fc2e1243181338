import Foundation
import Testing
@testable import Runner
import TestSupport

private func parse(_ text: String, limits: TaskLimits = TaskLimits()) -> Result<TaskFile, TaskRejection> {
    TaskParser.parse(Array(text.utf8), limits: limits)
}

private func accepted(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> TaskFile {
    switch parse(text) {
    case .success(let task): return task
    case .failure(let rejection):
        Issue.record("refused: \(rejection.reason)", sourceLocation: sourceLocation)
        throw rejection
    }
}

@Suite("Task file parsing", .unit)
struct TaskParserTests {
    @Test func dgridTaskFileParsesUnchanged() throws {
        let task = try accepted(#"{"task_id":"hello","script":"echo hi","timeout_seconds":30}"#)
        #expect(task == TaskFile(taskID: "hello", script: "echo hi", timeoutSeconds: 30))
        #expect(task.priority == .normal)
        #expect(task.image == nil && task.resources.isEmpty && task.env.isEmpty && task.dependsOn.isEmpty)
        #expect(task.unknownFields.isEmpty)
    }

    @Test func gridAndNotAfterAreReadAndWrittenBack() throws {
        let task = try accepted(#"{"task_id":"s","script":"true","timeout_seconds":5,"grid":"g-0123456789abcdef0123456789abcdef","not_after":"2027-01-01T00:00:00Z"}"#)
        #expect(task.grid == "g-0123456789abcdef0123456789abcdef" && task.notAfter == "2027-01-01T00:00:00Z" && task.unknownFields.isEmpty)
        let again = try accepted(String(decoding: TaskParser.encode(task), as: UTF8.self))
        #expect(again.grid == task.grid && again.notAfter == task.notAfter)
    }

    @Test func everyFieldIsRead() throws {
        let task = try accepted("""
            {
              "task_id": "build.42", "script": "make -j4\\nmake test", "timeout_seconds": 600,
              "image": "sha256:abc", "priority": "critical",
              "resources": {"cpus": 1.5, "memory": "256m", "pids": 128},
              "env": {"CI": "1", "_X9": "a b"}, "depends_on": ["fetch", "configure-1"],
              "dependency_mode": "all", "quorum": 2, "checkpointing": true,
              "created_at": "2026-11-29T10:00:00Z", "submitter": "alice@example.org"
            }
            """)
        #expect(task.taskID == "build.42")
        #expect(task.script == "make -j4\nmake test")
        #expect(task.timeoutSeconds == 600)
        #expect(task.image == "sha256:abc")
        #expect(task.priority == .critical)
        #expect(task.resources == TaskResources(cpus: 1.5, memoryBytes: 256 << 20, pids: 128))
        #expect(task.env == ["CI": "1", "_X9": "a b"])
        #expect(task.dependsOn == ["fetch", "configure-1"])
        #expect(task.dependencyMode == .allSucceeded && task.quorum == TaskQuorum(replicas: 2, agree: 2) && task.checkpointing == .enabled(true))
        #expect(task.createdAt == "2026-11-29T10:00:00Z")
        #expect(task.submitter == "alice@example.org")
        #expect(task.unknownFields.isEmpty)
    }

    /// The improvement report's object form, kept as given when written back.
    @Test func checkpointingObjectFormIsReadAndWrittenBack() throws {
        let task = try accepted(#"{"task_id":"t","script":"true","timeout_seconds":5,"checkpointing":{"interval_seconds":60}}"#)
        #expect(task.checkpointing == .every(intervalSeconds: 60) && task.unknownFields.isEmpty)
        let again = try accepted(String(decoding: TaskParser.encode(task), as: UTF8.self))
        #expect(again.checkpointing == .every(intervalSeconds: 60))
    }

    @Test(arguments: [("1", 1), ("3", 3), ("20", 20), ("5.0", 5)])
    func maxAttemptsAcceptsWholeNumbersUpToTheBound(literal: String, attempts: Int) throws {
        let task = try accepted(#"{"task_id":"t","script":"true","timeout_seconds":5,"max_attempts":\#(literal)}"#)
        #expect(task.maxAttempts == attempts && task.unknownFields.isEmpty)
        #expect(try accepted(#"{"task_id":"t","script":"true","timeout_seconds":5}"#).maxAttempts == nil)
    }

    @Test(arguments: [("30", 30), ("30.0", 30), ("3e1", 30), ("1", 1), ("86400", 86_400)])
    func timeoutAcceptsIntegralNumbers(literal: String, seconds: Int) throws {
        let task = try accepted(#"{"task_id":"t","script":"true","timeout_seconds":\#(literal)}"#)
        #expect(task.timeoutSeconds == seconds)
    }

    static let memoryCases: [(String, UInt64)] = [
        (#""256m""#, 268_435_456), (#""1g""#, 1_073_741_824), (#""1G""#, 1_073_741_824), (#""1.5g""#, 1_610_612_736),
        (#""512k""#, 524_288), (#""64MiB""#, 67_108_864), (#""4096""#, 4096), (#""4096b""#, 4096),
        ("1048576", 1_048_576), ("1048576.0", 1_048_576),
    ]

    @Test(arguments: memoryCases)
    func memorySizes(literal: String, bytes: UInt64) throws {
        let task = try accepted(#"{"task_id":"t","script":"true","timeout_seconds":5,"resources":{"memory":\#(literal)}}"#)
        #expect(task.resources.memoryBytes == bytes)
    }

    @Test func unknownFieldsAreKeptAndListedSorted() throws {
        let task = try accepted("""
            {"task_id":"t","script":"true","timeout_seconds":5,
             "zeta":{"nested":[1,2,{"x":null}]},"alpha":"a","Mid":3.25}
            """)
        #expect(task.unknownFields == ["Mid", "alpha", "zeta"])
        #expect(task.unknownValues["zeta"] == #"{"nested":[1,2,{"x":null}]}"#)
        #expect(task.unknownFieldsDescription == #""Mid", "alpha", "zeta""#)
        // encode keeps them, so a re-submitted file loses nothing.
        let again = try #require(try? TaskParser.parse(TaskParser.encode(task)).get())
        #expect(again.unknownFields == task.unknownFields)
        #expect(again.unknownValues == task.unknownValues)
    }

    @Test func manyHostileUnknownFieldsAreSummarisedSafely() throws {
        let names = (0..<20).map { #""x\u001b\n\#($0)":1"# }.joined(separator: ",")
        let task = try accepted(#"{"task_id":"t","script":"true","timeout_seconds":5,\#(names)}"#)
        #expect(task.unknownFields.count == 20)
        #expect(task.unknownFieldsDescription.hasSuffix(" and 12 more"))
        #expect(!task.unknownFieldsDescription.unicodeScalars.contains { $0.value < 0x20 })
    }

    @Test func nullMeansAbsentForOptionalFields() throws {
        let task = try accepted(#"{"task_id":"t","script":"true","timeout_seconds":5,"image":null,"priority":null,"resources":null,"env":null}"#)
        #expect(task == TaskFile(taskID: "t", script: "true", timeoutSeconds: 5))
    }

    @Test func encodeWritesSortedDGridJSONAndFillsCreatedAt() throws {
        let task = TaskFile(taskID: "hello", script: "echo \"hi\"\n", timeoutSeconds: 30, priority: .high,
                            resources: TaskResources(cpus: 2, memoryBytes: 1 << 30))
        let now = try #require(ISOTime.parse("2026-11-29T10:00:00Z"))
        let text = String(decoding: TaskParser.encode(task, now: now), as: UTF8.self)
        #expect(text == """
            {
              "created_at": "2026-11-29T10:00:00Z",
              "priority": "high",
              "resources": {
                "cpus": 2.0,
                "memory": 1073741824
              },
              "script": "echo \\"hi\\"\\n",
              "task_id": "hello",
              "timeout_seconds": 30
            }

            """)
    }

    @Test func encodeThenParseIsIdentity() throws {
        let task = TaskFile(
            taskID: "round-trip_1", script: "printf 'é\\t%s' \"$X\"", timeoutSeconds: 77, image: "alpine:3.20",
            priority: .low, resources: TaskResources(cpus: 0.25, memoryBytes: 3 << 20, pids: 9),
            env: ["X": "ü\n\u{1}", "Y": ""], dependsOn: ["a", "b"], createdAt: "2026-01-02T03:04:05Z",
            submitter: "bob", dependencyMode: .anySucceeded, quorum: TaskQuorum(replicas: 3, agree: 3), checkpointing: .enabled(false), maxAttempts: 5)
        let again = try TaskParser.parse(TaskParser.encode(task)).get()
        #expect(again == task)
        // A quorum D-GRID's integer cannot say is written as the object, and read back the same.
        var wider = task
        wider.quorum = TaskQuorum(replicas: 3, agree: 2, maxReplicas: 7, compare: [.exitCode, .stdout])
        #expect(try TaskParser.parse(TaskParser.encode(wider)).get() == wider)
    }

    @Test func encodeKeepsAnExistingCreatedAt() throws {
        let task = TaskFile(taskID: "t", script: "true", timeoutSeconds: 1, createdAt: "2020-01-01T00:00:00Z")
        #expect(try TaskParser.parse(TaskParser.encode(task)).get().createdAt == "2020-01-01T00:00:00Z")
        let fresh = try TaskParser.parse(TaskParser.encode(TaskFile(taskID: "t", script: "true", timeoutSeconds: 1))).get()
        #expect(fresh.createdAt.flatMap(ISOTime.parse) != nil)
    }

    @Test func limitsAreTheWorkersOwn() {
        var limits = TaskLimits()
        limits.maxCPUs = 1
        limits.timeoutRange = 1...60
        #expect(throws: TaskRejection.self) {
            try parse(#"{"task_id":"t","script":"true","timeout_seconds":5,"resources":{"cpus":2}}"#, limits: limits).get()
        }
        #expect(throws: TaskRejection.self) { try parse(#"{"task_id":"t","script":"true","timeout_seconds":61}"#, limits: limits).get() }
        #expect((try? parse(#"{"task_id":"t","script":"true","timeout_seconds":60}"#, limits: limits).get()) != nil)
    }

    @Test func scriptExactlyAtTheLimitIsAccepted() throws {
        var limits = TaskLimits()
        limits.maxScriptBytes = 10
        let ok = try parse(#"{"task_id":"t","script":"0123456789","timeout_seconds":5}"#, limits: limits).get()
        #expect(ok.script.utf8.count == 10)
        guard case .failure(let rejection) = parse(#"{"task_id":"t","script":"0123456789a","timeout_seconds":5}"#, limits: limits) else {
            Issue.record("11-byte script accepted with a 10-byte limit")
            return
        }
        #expect(rejection.field == "script")
    }

    @Test func attackerTextInReasonsIsEscapedAndCapped() throws {
        let id = "\u{1b}[31m" + String(repeating: "x", count: 5000)
        guard case .failure(let rejection) = parse(#"{"task_id":"\#(id)","script":"true","timeout_seconds":5}"#.replacingOccurrences(of: "\u{1b}", with: "\\u001b")) else {
            Issue.record("accepted")
            return
        }
        #expect(rejection.reason.hasPrefix("task_id: "))
        #expect(rejection.reason.contains("\\u{1b}[31m"))
        #expect(!rejection.reason.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7f })
        #expect(rejection.reason.count < 400)
        #expect(rejection.description == rejection.reason)
    }

    @Test(arguments: [
        ("hello", true), ("a", true), ("A.b_c-9", true), ("1", true), ("x.json", true),
        (String(repeating: "a", count: 128), true), (String(repeating: "a", count: 129), false),
        ("", false), (".hidden", false), ("-rf", false), ("a..b", false), ("..", false), ("a/b", false),
        ("a\\b", false), ("a b", false), ("a\nb", false), ("a\u{0}b", false), ("ünï", false), ("a:b", false),
        ("x.lock", false), ("trailing.", false), ("a\u{202e}b", false),
    ])
    func taskIDRule(id: String, valid: Bool) {
        #expect(TaskParser.isValidTaskID(id) == valid)
    }
}

/// One hostile or broken task file and the field its refusal must name.
struct BadTaskFile: Sendable, CustomTestStringConvertible {
    let name: String
    let bytes: [UInt8]
    /// Text the reason must contain (the field name, or what is wrong with the file).
    let expected: String
    var limits = TaskLimits()

    var testDescription: String { name }

    init(_ name: String, _ text: String, _ expected: String, limits: TaskLimits = TaskLimits()) {
        self.init(name, bytes: Array(text.utf8), expected, limits: limits)
    }

    init(_ name: String, bytes: [UInt8], _ expected: String, limits: TaskLimits = TaskLimits()) {
        self.name = name
        self.bytes = bytes
        self.expected = expected
        self.limits = limits
    }

    /// A valid task with `field` replaced by raw JSON `value` (or added).
    static func with(_ name: String, _ field: String, _ value: String, _ expected: String, limits: TaskLimits = TaskLimits()) -> BadTaskFile {
        var fields = [#""task_id":"t""#, #""script":"true""#, #""timeout_seconds":5"#].filter { !$0.hasPrefix("\"\(field)\"") }
        fields.append("\"\(field)\":\(value)")
        return BadTaskFile(name, "{" + fields.joined(separator: ",") + "}", expected, limits: limits)
    }

    static func without(_ field: String) -> BadTaskFile {
        let fields = [#""task_id":"t""#, #""script":"true""#, #""timeout_seconds":5"#].filter { !$0.hasPrefix("\"\(field)\"") }
        return BadTaskFile("missing \(field)", "{" + fields.joined(separator: ",") + "}", "\(field): missing")
    }
}

private let bigLimits: TaskLimits = {
    var limits = TaskLimits()
    limits.maxFileBytes = 4 << 20
    return limits
}()

let badTaskFiles: [BadTaskFile] = [
    // The file as a whole
    BadTaskFile("empty file", "", "not valid JSON"),
    BadTaskFile("truncated JSON", #"{"task_id": "#, "not valid JSON"),
    BadTaskFile("trailing garbage", #"{"task_id":"t","script":"true","timeout_seconds":5} x"#, "not valid JSON"),
    BadTaskFile("single quotes", #"{'task_id':'t'}"#, "not valid JSON"),
    BadTaskFile("trailing comma", #"{"task_id":"t","script":"true","timeout_seconds":5,}"#, "not valid JSON"),
    BadTaskFile("NaN literal", #"{"task_id":"t","script":"true","timeout_seconds":NaN}"#, "not valid JSON"),
    BadTaskFile("leading zero", #"{"task_id":"t","script":"true","timeout_seconds":030}"#, "not valid JSON"),
    BadTaskFile("array top level", #"[{"task_id":"t","script":"true","timeout_seconds":5}]"#, "must be a JSON object, found an array"),
    BadTaskFile("string top level", #""hello""#, "must be a JSON object, found a string"),
    BadTaskFile("null top level", "null", "must be a JSON object, found null"),
    BadTaskFile("duplicate task_id", #"{"task_id":"t","task_id":"u","script":"true","timeout_seconds":5}"#, #"duplicate key "task_id""#),
    BadTaskFile("raw newline in a string", "{\"task_id\":\"t\",\"script\":\"a\nb\",\"timeout_seconds\":5}", "control character"),
    BadTaskFile("invalid UTF-8", bytes: Array(#"{"task_id":"t","script":""#.utf8) + [0xC3, 0x28] + Array(#"","timeout_seconds":5}"#.utf8), "UTF-8"),
    BadTaskFile("lone surrogate", #"{"task_id":"t","script":"\ud800","timeout_seconds":5}"#, "surrogate"),
    BadTaskFile("10k nested arrays", String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000), "nested more than 64"),
    BadTaskFile("10k nested arrays in a field", #"{"task_id":"t","script":"true","timeout_seconds":5,"x":"#
        + String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000) + "}", "nested more than 64"),
    BadTaskFile("10k nested objects, unterminated", String(repeating: #"{"a":"#, count: 10_000), "nested more than 64"),
    // What a signed task names (docs/ARCHITECTURE.md §9)
    BadTaskFile.with("grid not an id", "grid", #""main""#, "grid: \"main\" is not a grid id"),
    BadTaskFile.with("grid upper-case hex", "grid", #""g-0123456789ABCDEF0123456789abcdef""#, "is not a grid id"),
    BadTaskFile.with("grid a number", "grid", "7", "grid"),
    BadTaskFile.with("not_after not a time", "not_after", #""tomorrow""#, "not_after: \"tomorrow\" is not an ISO-8601 time"),
    BadTaskFile("over maxFileBytes", "{" + String(repeating: " ", count: 256 * 1024) + "}", "over the limit of 262144"),
    // Required fields
    .without("task_id"), .without("script"), .without("timeout_seconds"),
    .with("task_id null", "task_id", "null", "task_id: missing"),
    .with("task_id number", "task_id", "7", "task_id: expected a string, found an integer"),
    .with("script array", "script", #"["echo"]"#, "script: expected a string, found an array"),
    .with("script empty", "script", #""""#, "script: empty"),
    .with("script with NUL", "script", #""echo hi\u0000rm -rf /""#, "script: contains a NUL"),
    .with("script 1 MB (file limit)", "script", "\"" + String(repeating: "x", count: 1 << 20) + "\"", "task file is"),
    .with("script 1 MB (script limit)", "script", "\"" + String(repeating: "x", count: 1 << 20) + "\"",
          "script: 1048576 bytes, over the limit of 65536", limits: bigLimits),
    .with("timeout as string", "timeout_seconds", #""30""#, "timeout_seconds: expected an integer"),
    .with("timeout true", "timeout_seconds", "true", "timeout_seconds: expected an integer number of seconds, found true or false"),
    .with("timeout fractional", "timeout_seconds", "30.5", "timeout_seconds: expected an integer"),
    .with("timeout 1e400", "timeout_seconds", "1e400", "timeout_seconds: expected an integer"),
    .with("timeout huge integer", "timeout_seconds", "99999999999999999999999", "timeout_seconds: expected an integer"),
    .with("timeout 0", "timeout_seconds", "0", "timeout_seconds: 0 is outside 1...86400"),
    .with("timeout negative", "timeout_seconds", "-5", "timeout_seconds: -5 is outside"),
    .with("timeout 10^9", "timeout_seconds", "1000000000", "timeout_seconds: 1000000000 is outside"),
    // Task ids
    .with("task_id with /", "task_id", #""a/b""#, "task_id: \"a/b\" is not a valid task id"),
    .with("task_id ../", "task_id", #""../../etc/passwd""#, "task_id: "),
    .with("task_id ..", "task_id", #""..""#, #"task_id: "..""#),
    .with("task_id with newline", "task_id", #""a\nb""#, #"task_id: "a\u{a}b""#),
    .with("task_id with ESC", "task_id", #""\u001b[2J""#, #"task_id: "\u{1b}[2J""#),
    .with("task_id 129 bytes", "task_id", "\"" + String(repeating: "a", count: 129) + "\"", "task_id: "),
    .with("task_id starting with -", "task_id", #""-rf""#, "task_id: "),
    .with("task_id empty", "task_id", #""""#, "task_id: "),
    // Optional fields
    .with("priority unknown", "priority", #""urgent""#, #"priority: "urgent" is not one of"#),
    .with("priority number", "priority", "1", "priority: expected a string"),
    .with("image number", "image", "5", "image: expected a string"),
    .with("image with spaces", "image", #""alpine; rm -rf /""#, "image: "),
    .with("resources string", "resources", #""big""#, "resources: expected an object"),
    .with("resources unknown key", "resources", #"{"gpus":1}"#, #"resources."gpus": unknown resource"#),
    .with("memory lots", "resources", #"{"memory":"lots"}"#, #"resources.memory: "lots" is not a size"#),
    .with("memory inf", "resources", #"{"memory":"inf"}"#, "resources.memory: "),
    .with("memory hex", "resources", #"{"memory":"0x10"}"#, "resources.memory: "),
    .with("memory zero", "resources", #"{"memory":0}"#, "resources.memory: must be above 0"),
    .with("memory negative", "resources", #"{"memory":-1}"#, "resources.memory: "),
    .with("memory above max", "resources", #"{"memory":"16g"}"#, "resources.memory: 17179869184 bytes is above"),
    .with("memory bool", "resources", #"{"memory":true}"#, "resources.memory: expected a size"),
    .with("cpus above max", "resources", #"{"cpus":64}"#, "resources.cpus: 64 is above this worker's limit of 4.0"),
    .with("cpus zero", "resources", #"{"cpus":0}"#, "resources.cpus: 0 must be above 0"),
    .with("cpus string", "resources", #"{"cpus":"2"}"#, "resources.cpus: expected a number"),
    .with("pids zero", "resources", #"{"pids":0}"#, "resources.pids: 0 must be above 0"),
    .with("pids above max", "resources", #"{"pids":100000}"#, "resources.pids: 100000 is above"),
    .with("pids fractional", "resources", #"{"pids":1.5}"#, "resources.pids: expected an integer"),
    .with("env array", "env", #"["A=1"]"#, "env: expected an object"),
    .with("env key A-B", "env", #"{"A-B":"1"}"#, #"env."A-B": not a variable name"#),
    .with("env key starting with a digit", "env", #"{"1A":"1"}"#, #"env."1A": not a variable name"#),
    .with("env key empty", "env", #"{"":"1"}"#, #"env."": not a variable name"#),
    .with("env key with =", "env", #"{"A=B":"1"}"#, #"env."A=B""#),
    .with("env value number", "env", #"{"A":1}"#, #"env."A": expected a string value, found an integer"#),
    .with("env value with NUL", "env", #"{"A":"x\u0000y"}"#, #"env."A": value contains a NUL"#),
    .with("env 65 entries", "env", "{" + (0..<65).map { #""V\#($0)":"x""# }.joined(separator: ",") + "}", "env: 65 variables, over the limit of 64"),
    .with("depends_on string", "depends_on", #""a""#, "depends_on: expected an array"),
    .with("depends_on bad id", "depends_on", #"["ok","../x"]"#, #"depends_on[1]: "../x" is not a valid task id"#),
    .with("depends_on number", "depends_on", "[1]", "depends_on[0]: expected a task id"),
    .with("depends_on itself", "depends_on", #"["t"]"#, "depends_on[0]: a task cannot depend on itself"),
    .with("depends_on duplicate", "depends_on", #"["a","a"]"#, #"depends_on[1]: "a" is listed twice"#),
    .with("created_at not a time", "created_at", #""yesterday""#, #"created_at: "yesterday" is not an ISO-8601 time"#),
    .with("created_at impossible date", "created_at", #""2026-02-30T00:00:00Z""#, "created_at: "),
    .with("submitter with terminal escape", "submitter", #""\u001b[31mroot""#, #"submitter: "\u{1b}[31mroot" contains control characters"#),
    .with("quorum zero", "quorum", "0", "quorum: 0 is outside"),
    .with("quorum 17", "quorum", "17", "quorum: 17 is outside 1...16"),
    .with("quorum string", "quorum", #""adaptive-ish""#, "quorum: expected a whole number, \"adaptive\" or"),
    .with("quorum agree over replicas", "quorum", #"{"replicas":2,"agree":3}"#, "quorum: agree: 3 is outside 1...2 (replicas)"),
    .with("quorum max under replicas", "quorum", #"{"replicas":3,"max_replicas":2}"#, "quorum: max_replicas: 2 is outside 3 (replicas)...16"),
    .with("quorum without replicas", "quorum", #"{"agree":2}"#, "quorum: replicas is missing"),
    .with("quorum unknown key", "quorum", #"{"replicas":3,"voters":2}"#, #"quorum: unknown key "voters""#),
    .with("quorum compare unknown", "quorum", #"{"replicas":3,"compare":["stderr"]}"#, #"quorum: compare: "\"stderr\"" is not one of exit_code, stdout, artifacts"#),
    .with("quorum compare empty", "quorum", #"{"replicas":3,"compare":[]}"#, "quorum: compare: name at least one of"),
    .with("checkpointing string", "checkpointing", #""yes""#, "checkpointing: expected true, false or {\"interval_seconds\": N}"),
    .with("checkpointing object with an unknown key", "checkpointing", #"{"interval_seconds":60,"every":"hour"}"#,
          #"checkpointing: unknown key "every"; expected interval_seconds"#),
    .with("checkpointing object without its interval", "checkpointing", "{}", "checkpointing: interval_seconds is missing"),
    .with("checkpointing interval zero", "checkpointing", #"{"interval_seconds":0}"#, "checkpointing: interval_seconds: 0 is outside 1...86400"),
    .with("checkpointing interval fractional", "checkpointing", #"{"interval_seconds":1.5}"#,
          "checkpointing: interval_seconds: expected a whole number of seconds"),
    .with("max_attempts zero", "max_attempts", "0", "max_attempts: 0 is outside 1...20"),
    .with("max_attempts negative", "max_attempts", "-3", "max_attempts: -3 is outside 1...20"),
    .with("max_attempts above the bound", "max_attempts", "21", "max_attempts: 21 is outside 1...20"),
    .with("max_attempts huge", "max_attempts", "1e30", "max_attempts: expected a whole number of attempts, found a number"),
    .with("max_attempts fractional", "max_attempts", "2.5", "max_attempts: expected a whole number"),
    .with("max_attempts string", "max_attempts", #""3""#, "max_attempts: expected a whole number of attempts, found a string"),
    .with("max_attempts bool", "max_attempts", "true", "max_attempts: expected a whole number of attempts, found true or false"),
]

@Suite("Hostile task files", .unit)
struct TaskRejectionTests {
    @Test(arguments: badTaskFiles)
    func refusedWithAReasonNamingTheField(_ file: BadTaskFile) {
        guard case .failure(let rejection) = TaskParser.parse(file.bytes, limits: file.limits) else {
            Issue.record("\(file.name): accepted")
            return
        }
        #expect(rejection.reason.contains(file.expected), "\(file.name): reason was \(rejection.reason)")
        // One line, no raw control characters, bounded.
        #expect(!rejection.reason.unicodeScalars.contains { $0.value < 0x20 || (0x7F..<0xA0).contains($0.value) })
        #expect(rejection.reason.count <= TaskRejection.maxReasonLength + 1)
    }

    @Test func fieldIsReportedSeparately() {
        guard case .failure(let rejection) = TaskParser.parse(Array(#"{"task_id":"t","script":"true","timeout_seconds":5,"resources":{"cpus":99}}"#.utf8)) else {
            Issue.record("accepted")
            return
        }
        #expect(rejection.field == "resources.cpus")
        guard case .failure(let whole) = TaskParser.parse(Array("[]".utf8)) else { return }
        #expect(whole.field == nil)
    }
}
