import Foundation
import Testing
@testable import Sandbox

/// Unpack timing on a real layer, for comparison with `tar -xzf` and `bsdtar`.
/// Off unless DGRID_UNPACK_BENCH names a blob; run it in release:
///
///     DGRID_UNPACK_BENCH=/dev/shm/layer.tar.gz DGRID_UNPACK_BENCH_DIFFID=sha256:… \
///     swift test -c release -Xswiftc -enable-testing --filter UnpackBenchmark
///
/// DGRID_UNPACK_BENCH_OUT (default /dev/shm) is where layers are unpacked,
/// DGRID_UNPACK_BENCH_RUNS (default 10) how many timed runs follow 2 warm-ups.
@Suite struct UnpackBenchmarkTests {
    static let environment = ProcessInfo.processInfo.environment

    @Test(.enabled(if: environment["DGRID_UNPACK_BENCH"] != nil))
    func unpackBenchmark() throws {
        let blob = Self.environment["DGRID_UNPACK_BENCH"] ?? ""
        let diffID = try Digest(parsing: Self.environment["DGRID_UNPACK_BENCH_DIFFID"] ?? "")
        let mediaType = blob.hasSuffix(".gz") ? "application/vnd.oci.image.layer.v1.tar+gzip"
            : blob.hasSuffix(".zst") ? "application/vnd.oci.image.layer.v1.tar+zstd"
            : "application/vnd.oci.image.layer.v1.tar"
        let out = (Self.environment["DGRID_UNPACK_BENCH_OUT"] ?? "/dev/shm") + "/dgrid-unpack-bench"
        let runs = Int(Self.environment["DGRID_UNPACK_BENCH_RUNS"] ?? "") ?? 10
        try? FileManager.default.removeItem(atPath: out)
        var times: [Double] = []
        var report: UnpackReport?
        for run in 0..<(runs + 2) {
            let start = ContinuousClock.now
            report = try LayerUnpacker.unpack(blobPath: blob, mediaType: mediaType, expectedDiffID: diffID, destination: out)
            let elapsed = ContinuousClock.now - start
            if run >= 2 { times.append(Double(elapsed.components.attoseconds) / 1e15 + Double(elapsed.components.seconds) * 1e3) }
            try FileManager.default.removeItem(atPath: out)
        }
        times.sort()
        let median = times.count % 2 == 1 ? times[times.count / 2] : (times[times.count / 2 - 1] + times[times.count / 2]) / 2
        print(String(format: "unpack %@: median %.1f ms, min %.1f, max %.1f over %d runs; %d entries, %llu bytes",
                     blob, median, times.first ?? 0, times.last ?? 0, times.count,
                     report?.entries ?? 0, report?.uncompressedBytes ?? 0))
    }
}
