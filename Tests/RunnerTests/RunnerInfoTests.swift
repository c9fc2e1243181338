import Testing
import TestSupport
@testable import Runner

@Suite(.unit) struct RunnerInfoTests {
    @Test func workerVersionIsSemantic() {
        let parts = RunnerInfo.workerVersion.split(separator: ".")
        #expect(parts.count == 3)
        #expect(parts.allSatisfy { Int($0) != nil })
    }
}
