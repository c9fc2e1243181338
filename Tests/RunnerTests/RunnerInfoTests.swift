import Testing
@testable import Runner

@Test func workerVersionIsSemantic() {
    let parts = RunnerInfo.workerVersion.split(separator: ".")
    #expect(parts.count == 3)
    #expect(parts.allSatisfy { Int($0) != nil })
}
