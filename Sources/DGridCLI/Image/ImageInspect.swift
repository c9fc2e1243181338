import ArgumentParser
import Sandbox

struct ImageInspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Show a local image: digests, layers, run config, allowlist status."
    )

    @Argument(help: ArgumentHelp("The image.", valueName: "NAME[:TAG]|DIGEST"))
    var reference: String

    @Flag(name: .long, help: "Print JSON.")
    var json = false

    struct Record: Encodable {
        struct Layer: Encodable {
            let digest: String
            let size: Int64
            let media_type: String
            let diff_id: String
            let unpacked: Bool
            let path: String
        }

        let names: [String]
        let manifest_digest: String
        let media_type: String
        let config_digest: String
        let platform: String?
        let layers: [Layer]
        let env: [String]
        let entrypoint: [String]?
        let cmd: [String]?
        let working_dir: String?
        let user: String?
        let config_problem: String?
        let allowlisted_as: [String]
    }

    func run() throws {
        let info: ImageAdmin.Inspection
        do {
            info = try ImageAdmin(store: ImageCLI.store()).inspect(reference)
        } catch {
            ImageCLI.fail(error)
        }
        let record = Record(
            names: info.names, manifest_digest: info.manifest.digest.description, media_type: info.manifest.mediaType,
            config_digest: info.configDigest.description, platform: info.platform,
            layers: info.layers.map { layer in
                Record.Layer(digest: layer.blob.digest.description, size: layer.blob.size, media_type: layer.blob.mediaType,
                             diff_id: layer.diffID.description, unpacked: layer.unpacked, path: layer.path)
            },
            env: info.config.env, entrypoint: info.config.entrypoint, cmd: info.config.cmd,
            working_dir: info.config.workingDir, user: info.config.user, config_problem: info.configProblem,
            allowlisted_as: info.allowlistEntries.map(\.name))
        if json {
            print(ImageCLI.json(record))
            return
        }
        func words(_ list: [String]?) -> String {
            guard let list else { return "-" }
            return "[" + list.map { UntrustedText.quoted($0, limit: 4096) }.joined(separator: ", ") + "]"
        }
        var lines = [
            "Names:        \(info.names.isEmpty ? "-" : info.names.map { UntrustedText.shown($0) }.joined(separator: ", "))",
            "Manifest:     \(info.manifest.digest) (\(UntrustedText.shown(info.manifest.mediaType)), \(info.manifest.size) bytes)",
            "Config:       \(info.configDigest)",
            "Platform:     \(info.platform.map { UntrustedText.shown($0) } ?? "-")",
            "Allowlisted:  \(record.allowlisted_as.isEmpty ? "no" : record.allowlisted_as.map { UntrustedText.shown($0) }.joined(separator: ", "))",
            "Env:          \(words(info.config.env))",
            "Entrypoint:   \(words(info.config.entrypoint))",
            "Cmd:          \(words(info.config.cmd))",
            "WorkingDir:   \(info.config.workingDir.map { $0.isEmpty ? "-" : UntrustedText.quoted($0, limit: 4096) } ?? "-")",
            "User:         \(info.config.user.map { $0.isEmpty ? "-" : UntrustedText.quoted($0) } ?? "-")",
        ]
        if let problem = info.configProblem { lines.append("Run refused:  \(UntrustedText.lineSafe(problem))") }
        lines.append("Layers:")
        print(lines.joined(separator: "\n"))
        let rows = info.layers.map { layer in
            [layer.blob.digest.short, ImageCLI.size(layer.blob.size), layer.diffID.short, layer.unpacked ? "yes" : "NO",
             layer.blob.mediaType]
        }
        print(ImageCLI.table(["  DIGEST", "SIZE", "DIFF_ID", "UNPACKED", "MEDIA TYPE"], rows.map { ["  " + $0[0]] + $0.dropFirst() }))
    }
}
