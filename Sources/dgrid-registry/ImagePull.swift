import ArgumentParser
import DGridCLI
import Registry
import Glibc
import Sandbox
import Synchronization

struct ImagePull: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pull",
        abstract: VerbAbstract.imagePull,
        discussion: """
        Tasks run images by digest only: pin a tag first with `dgrid image allow REGISTRY/NAME:TAG`, \
        which prints the digest, then pull REGISTRY/NAME@sha256:…. Nothing is fetched for a digest \
        that is not on the allowlist. Every blob is verified by digest and size and every layer is \
        unpacked now. Credentials come from a Docker-style config.json (--registry-config, \
        $DGRID_REGISTRY_CONFIG, $DGRID_HOME/registry.json, ~/.docker/config.json).
        """
    )

    @Argument(help: ArgumentHelp("The image, by digest.", valueName: "NAME@DIGEST"))
    var reference: String

    @OptionGroup var registry: RegistryCLIOptions

    func run() throws {
        let store = ImageCLI.store()
        let options = registry.clientOptions(store: store)
        let progress = PullProgressPrinter.forStandardError()
        let image: ImportedImage
        do {
            image = try ImagePuller(store: store, options: options).pull(reference, progress: progress.map { printer in
                { @Sendable event in printer.show(event) }
            })
        } catch {
            progress?.finish()
            ImageCLI.fail(error)
        }
        progress?.finish()
        ImageCLI.report(image, verb: "pulled")
    }
}

/// Bytes per blob on a terminal (stderr), one line each; nothing otherwise.
final class PullProgressPrinter: Sendable {
    private struct State {
        var current: Digest?
        var lastDraw: timespec = timespec()
    }

    private let state = Mutex(State())

    static func forStandardError() -> PullProgressPrinter? {
        isatty(STDERR_FILENO) == 1 ? PullProgressPrinter() : nil
    }

    func show(_ event: PullProgress) {
        state.withLock { state in
            switch event {
            case .blob(let digest, let received, let total):
                var now = timespec()
                clock_gettime(CLOCK_MONOTONIC, &now)
                let elapsedMs = (now.tv_sec - state.lastDraw.tv_sec) * 1000 + (now.tv_nsec - state.lastDraw.tv_nsec) / 1_000_000
                guard state.current != digest || received == total || received == 0 || elapsedMs >= 100 else { return }
                if let current = state.current, current != digest { write("\n") }
                state.current = digest
                state.lastDraw = now
                write("\r\u{1b}[Kdgrid: \(digest.short): \(ImageCLI.size(received)) / \(ImageCLI.size(total))")
            case .present(let digest, let total):
                if state.current != nil { write("\n") }
                state.current = nil
                write("dgrid: \(digest.short): \(ImageCLI.size(total)) already stored\n")
            case .unpacking(let diffID, let index, let count):
                if state.current != nil { write("\n") }
                state.current = nil
                write("dgrid: unpacking layer \(index)/\(count) \(diffID.short)\n")
            }
        }
    }

    func finish() {
        state.withLock { state in
            if state.current != nil { write("\n") }
            state.current = nil
        }
    }

    private func write(_ text: String) {
        FileDescriptorWriter.write(Array(text.utf8), to: STDERR_FILENO)
    }
}
