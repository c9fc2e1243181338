// SignBench: the median cost of checking one task's signature in-process
// (parse the .sig, verify over the task's bytes, find the signer in
// allowed_signers), per key type, and of one `ssh-keygen -Y verify` of the
// same task, interleaved round by round.
//   SignBench [--runs 2000] [--peer-runs 50] [--json FILE]
import Foundation
import Trust

func nowNs() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

func shell(_ args: [String], stdin: Data? = nil) -> (Int32, Data) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = args
    let out = Pipe()
    p.standardOutput = out
    p.standardError = FileHandle.nullDevice
    let input = Pipe()
    p.standardInput = stdin == nil ? FileHandle.nullDevice : input
    try! p.run()
    if let stdin { input.fileHandleForWriting.write(stdin); try? input.fileHandleForWriting.close() }
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, data)
}

func percentile(_ samples: [Double], _ p: Double) -> Double {
    let s = samples.sorted()
    return s[min(s.count - 1, Int((p * Double(s.count - 1)).rounded()))]
}

var runs = 2000, peerRuns = 50
var jsonPath: String?
var args = CommandLine.arguments.dropFirst().makeIterator()
while let a = args.next() {
    switch a {
    case "--runs": runs = Int(args.next() ?? "") ?? runs
    case "--peer-runs": peerRuns = Int(args.next() ?? "") ?? peerRuns
    case "--json": jsonPath = args.next()
    default: FileHandle.standardError.write(Data("usage: SignBench [--runs N] [--peer-runs N] [--json FILE]\n".utf8)); exit(2)
    }
}

let dir = FileManager.default.temporaryDirectory.appendingPathComponent("dgrid-signbench-\(getpid())").path
try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(atPath: dir) }
let task = Data(#"{"task_id":"bench-1","script":"echo hello; sleep 1","timeout_seconds":60,"grid":"g-0123456789abcdef0123456789abcdef","priority":"normal","created_at":"2026-12-04T00:00:00Z"}"#.utf8)
let taskPath = dir + "/task.json"
try! task.write(to: URL(fileURLWithPath: taskPath))

print("Task signature check, per task: in-process (parse .sig, verify, allowed_signers) vs ssh-keygen -Y verify")
print("key type            in-process median   p90        ssh-keygen median   ratio")
var json: [String] = []
for (name, keygen) in [("ed25519", ["-t", "ed25519"]), ("ecdsa-p256", ["-t", "ecdsa", "-b", "256"]), ("rsa-3072", ["-t", "rsa", "-b", "3072"])] {
    let key = dir + "/" + name
    _ = shell(["ssh-keygen", "-q"] + keygen + ["-N", "", "-C", "bench@example.com", "-f", key])
    let (_, sig) = shell(["ssh-keygen", "-Y", "sign", "-q", "-n", "dgrid-task", "-f", key], stdin: task)
    let pub = try! String(contentsOfFile: key + ".pub", encoding: .utf8)
    let allowedPath = dir + "/allowed_signers-" + name
    try! "bench@example.com \(pub)".write(toFile: allowedPath, atomically: true, encoding: .utf8)
    try! sig.write(to: URL(fileURLWithPath: taskPath + "." + name + ".sig"))
    let signers = try! AllowedSigners.parse("bench@example.com \(pub)")
    let bytes = Array(task), sigBytes = Array(sig)
    let now = Int64(time(nil))
    func once() {
        let signatures = try! SSHSignature.all(inArmored: sigBytes)
        let signer = try! signatures[0].verify(bytes, namespace: "dgrid-task")
        _ = try! signers.signer(for: signer, namespace: "dgrid-task", at: now)
    }
    for _ in 0..<50 { once() }
    var ours: [Double] = [], theirs: [Double] = []
    // Interleaved: one peer run every runs/peerRuns of ours.
    let stride = max(1, runs / max(1, peerRuns))
    for i in 0..<runs {
        let t0 = nowNs(); once(); ours.append(Double(nowNs() - t0) / 1e6)
        if i % stride == 0 && theirs.count < peerRuns {
            let t1 = nowNs()
            let (status, _) = shell(["ssh-keygen", "-Y", "verify", "-f", allowedPath, "-I", "bench@example.com", "-n", "dgrid-task",
                                     "-s", taskPath + "." + name + ".sig"], stdin: task)
            precondition(status == 0, "ssh-keygen -Y verify refused the \(name) signature")
            theirs.append(Double(nowNs() - t1) / 1e6)
        }
    }
    let (m, p90, peer) = (percentile(ours, 0.5), percentile(ours, 0.9), percentile(theirs, 0.5))
    print(name.padding(toLength: 19, withPad: " ", startingAt: 0) + String(format: " %8.3f ms        %8.3f ms   %8.3f ms         %.4fx", m, p90, peer, m / peer))
    json.append(#"{"key":"\#(name)","runs":\#(ours.count),"median_ms":\#(m),"p90_ms":\#(p90),"ssh_keygen_median_ms":\#(peer),"ssh_keygen_runs":\#(theirs.count)}"#)
}
print("goal: ed25519 ≤ 0.2 ms per task (issue 11)")
if let jsonPath { try! ("[" + json.joined(separator: ",") + "]\n").write(toFile: jsonPath, atomically: true, encoding: .utf8) }
