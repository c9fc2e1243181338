// SpawnBench: times SandboxRunner.run(/bin/true) in one process, N times after
// warmups, without limits and with memory + pids limits.
//   SpawnBench --rootfs DIR [--runs 200] [--warmup 20] [--json FILE]
import Glibc
import Sandbox

struct Options {
    var rootfs = ""
    var runs = 200
    var warmup = 20
    var json: String?

    static func parse(_ args: [String]) -> Options {
        var o = Options()
        var i = 0
        func value() -> String {
            i += 1
            guard i < args.count else { usage("\(args[i - 1]) needs a value") }
            return args[i]
        }
        while i < args.count {
            switch args[i] {
            case "--rootfs": o.rootfs = value()
            case "--runs", "-n": o.runs = Int(value()) ?? -1
            case "--warmup": o.warmup = Int(value()) ?? -1
            case "--json": o.json = value()
            case "-h", "--help": usage(nil)
            default: usage("unknown argument \(args[i])")
            }
            i += 1
        }
        if o.rootfs.isEmpty { usage("--rootfs DIR is required") }
        if o.runs < 1 || o.warmup < 0 { usage("--runs must be >= 1 and --warmup >= 0") }
        return o
    }

    static func usage(_ error: String?) -> Never {
        if let error { eprint("SpawnBench: \(error)\n") }
        eprint("usage: SpawnBench --rootfs DIR [--runs 200] [--warmup 20] [--json FILE]\n")
        exit(error == nil ? 0 : 2)
    }
}

func eprint(_ text: String) {
    var bytes = Array(text.utf8)
    _ = write(2, &bytes, bytes.count)
}

func nowNs() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

struct Result {
    let name: String
    var samplesMs: [Double] = []
    var note: String?
    var error: String?

    func percentile(_ p: Double) -> Double {
        let s = samplesMs.sorted()
        let rank = p * Double(s.count - 1)
        let lo = Int(rank.rounded(.down)), hi = Int(rank.rounded(.up))
        return s[lo] + (s[hi] - s[lo]) * (rank - Double(lo))
    }

    var line: String {
        if let error { return pad(name) + "error: \(error)" }
        var text = pad(name) + "median \(fmt(percentile(0.5))) ms  p90 \(fmt(percentile(0.9))) ms  min \(fmt(samplesMs.min()!)) ms  (n=\(samplesMs.count))"
        if let note { text += "\n" + pad("") + note }
        return text
    }

    var json: String {
        func esc(_ s: String) -> String {
            var out = ""
            for c in s.unicodeScalars {
                switch c {
                case "\"": out += "\\\""
                case "\\": out += "\\\\"
                case _ where c.value < 0x20: out += "\\u00" + (c.value < 0x10 ? "0" : "") + String(c.value, radix: 16)
                default: out.unicodeScalars.append(c)
                }
            }
            return "\"" + out + "\""
        }
        var fields = ["\"name\": \(esc(name))"]
        if let error {
            fields.append("\"error\": \(esc(error))")
        } else {
            fields += ["\"runs\": \(samplesMs.count)",
                       "\"median_ms\": \(fmt(percentile(0.5)))",
                       "\"p90_ms\": \(fmt(percentile(0.9)))",
                       "\"min_ms\": \(fmt(samplesMs.min()!))",
                       "\"samples_ms\": [\(samplesMs.map(fmt).joined(separator: ", "))]"]
        }
        if let note { fields.append("\"note\": \(esc(note))") }
        return "{" + fields.joined(separator: ", ") + "}"
    }
}

func fmt(_ x: Double) -> String {
    let v = (x * 1000).rounded() / 1000
    let whole = Int(v)
    let frac = Int(((v - Double(whole)) * 1000).rounded())
    let fracText = String(frac)
    return "\(whole)." + String(repeating: "0", count: 3 - fracText.count) + fracText
}

func pad(_ s: String) -> String { s + String(repeating: " ", count: max(0, 14 - s.count)) }

/// Runs `spec` warmup + runs times; a setup error on the first call is returned as
/// the result's error (e.g. cgroups not available), a later one aborts the variant.
func measure(_ name: String, runner: SandboxRunner, spec: SandboxSpec, options: Options) -> Result {
    var result = Result(name: name)
    var first = true
    for i in 0..<(options.warmup + options.runs) {
        let t0 = nowNs()
        let outcome: Outcome
        do {
            outcome = try runner.run(spec)
        } catch {
            result.error = first ? "\(error)" : "run \(i) failed: \(error)"
            return result
        }
        let elapsed = Double(nowNs() - t0) / 1e6
        first = false
        guard outcome.exitCode == 0 else {
            result.error = "/bin/true exited \(outcome.exitCode): \(outcome.stderr.text)"
            return result
        }
        if !outcome.unenforcedLimits.isEmpty {
            result.note = "NOT ENFORCED (no cgroup): " + outcome.unenforcedLimits.joined(separator: ", ")
        }
        if i >= options.warmup { result.samplesMs.append(elapsed) }
    }
    return result
}

let options = Options.parse(Array(CommandLine.arguments.dropFirst()))
let runner = SandboxRunner.forThisHost()
runner.removeStaleGroups()

var base = SandboxSpec(rootfs: options.rootfs, command: ["/bin/true"])
do {
    base.seccomp = try DefaultSeccomp.filter()
} catch {
    eprint("SpawnBench: default seccomp profile failed to compile: \(error)\n")
    exit(1)
}
let seccompNote = base.seccomp == nil ? "seccomp: none (DefaultSeccomp.filter() returned nil)" : "seccomp: default profile"

var results: [Result] = []

// 1. No limits. Where no cgroup driver exists yet, the runner refuses even an
//    unlimited run unless told to go without cgroups: retry that way and say so.
var plain = measure("no limits", runner: runner, spec: base, options: options)
if plain.error != nil {
    var spec = base
    spec.allowWithoutCgroupLimits = true
    let firstError = plain.error!
    plain = measure("no limits", runner: runner, spec: spec, options: options)
    if plain.error == nil {
        plain.note = "needed allowWithoutCgroupLimits (no cgroup created): \(firstError)"
    }
}
results.append(plain)

// 2. memory 256m + pids 128, enforced: no fallback, the point is the cgroup cost.
var limited = base
limited.limits.memoryBytes = 256 << 20
limited.limits.pids = 128
results.append(measure("mem+pids", runner: runner, spec: limited, options: options))

print("SpawnBench: SandboxRunner.run(/bin/true) in-process, \(options.warmup) warmups, \(options.runs) runs; \(seccompNote)")
for r in results { print(r.line) }

if let path = options.json {
    let text = "{\"seccomp\": \"\(seccompNote)\", \"warmup\": \(options.warmup), \"results\": [\n  "
        + results.map(\.json).joined(separator: ",\n  ") + "\n]}\n"
    guard let f = fopen(path, "w") else {
        eprint("SpawnBench: cannot write \(path)\n")
        exit(1)
    }
    fputs(text, f)
    fclose(f)
}
// The limited variant may fail while cgroups are unavailable: printed above, not fatal.
exit(results[0].error == nil ? 0 : 3)
