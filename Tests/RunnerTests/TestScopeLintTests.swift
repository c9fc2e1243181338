import Foundation
import Testing
import TestSupport

/// `make test` runs the unit suites as `nobody` and the system suites as root
/// (TestScope). A suite that names neither scope would run in neither pass,
/// so every suite must name one, and no test may live outside a suite.
@Suite(.unit) struct TestScopeLintTests {
    static let suitePattern = try! NSRegularExpression(
        pattern: #"@Suite(\((?:"(?:[^"\\]|\\.)*",\s*)?\.(unit|system)\b)?"#)

    static func testSources() throws -> [URL] {
        let tests = packageRoot.appendingPathComponent("Tests")
        let targets = try FileManager.default.contentsOfDirectory(atPath: tests.path)
            .filter { $0.hasSuffix("Tests") }
        return try targets.flatMap { target in
            try FileManager.default.contentsOfDirectory(atPath: tests.appendingPathComponent(target).path)
                .filter { $0.hasSuffix(".swift") && $0 != "TestScopeLintTests.swift" }  // its own examples
                .map { tests.appendingPathComponent(target).appendingPathComponent($0) }
        }
    }

    /// Suites and free test functions of `source` that name no scope.
    static func unscoped(in source: String) -> [String] {
        let range = NSRange(source.startIndex..., in: source)
        let suites = suitePattern.matches(in: source, range: range)
            .filter { $0.range(at: 1).location == NSNotFound }
            .map { _ in "a @Suite without .unit or .system" }
        let freeTests = source.split(separator: "\n").filter { $0.hasPrefix("@Test") }
            .map { "a test outside a suite: \($0)" }
        return suites + freeTests
    }

    @Test func theLintSeesAnUnscopedSuite() {
        #expect(Self.unscoped(in: "@Suite struct A {}").count == 1)
        #expect(Self.unscoped(in: "@Suite(.serialized) struct A {}").count == 1)
        #expect(Self.unscoped(in: "@Test func free() {}").count == 1)
        #expect(Self.unscoped(in: "@Suite(.unit) struct A {}\n@Suite(\"Named\", .system, .serialized) struct B {}").isEmpty)
    }

    @Test func everySuiteNamesItsScope() throws {
        let sources = try Self.testSources()
        #expect(sources.count > 20, "found the test sources under \(packageRoot.path)/Tests")
        for file in sources {
            let problems = Self.unscoped(in: try String(contentsOf: file, encoding: .utf8))
            #expect(problems.isEmpty, "\(file.lastPathComponent): \(problems.joined(separator: "; ")) — add .unit or .system (Tests/TestSupport/TestScope.swift)")
        }
    }
}
