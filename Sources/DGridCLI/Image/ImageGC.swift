import ArgumentParser
import Sandbox

struct ImageGC: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gc",
        abstract: "Remove blobs and layers no local or allowlisted image references.",
        discussion: "Layers a running sandbox holds are kept."
    )

    func run() throws {
        let report: GCReport
        do {
            report = try ImageGarbageCollector(store: ImageCLI.store()).collect()
        } catch {
            ImageCLI.fail(error)
        }
        for digest in report.removedBlobs { print("removed blob \(digest)") }
        for layer in report.removedLayers { print("removed layer sha256:\(layer)") }
        for layer in report.layersInUse { print("kept layer sha256:\(layer) (in use)") }
        print("removed \(report.removedBlobs.count) blobs (\(ImageCLI.size(report.removedBytes))), "
              + "\(report.removedLayers.count) layers, \(report.removedTemporaries) temporaries")
    }
}
