import FoundationEssentials
import Glibc
import Sandbox

/// Shared by the `image` verbs: opening the store, one-line errors, tables, JSON.
package enum ImageCLI {
    /// The store under `$DGRID_HOME` (or the user's default state directory).
    package static func store() -> ImageStore {
        do {
            return try ImageStore.forThisUser()
        } catch {
            fail(error)
        }
    }

    /// One line on stderr, exit 1. Errors embed untrusted text escaped already;
    /// `lineSafe` is the backstop that keeps the line one line, and inert.
    package static func fail(_ error: Error) -> Never {
        FileDescriptorWriter.write(Array("dgrid: \(UntrustedText.lineSafe("\(error)"))\n".utf8), to: STDERR_FILENO)
        Glibc.exit(1)
    }

    /// "NAME DIGEST" per name on stdout; what happened to each layer on stderr.
    package static func report(_ image: ImportedImage, verb: String) {
        for name in image.names {
            // Names come from the archive (OCI ref.name, RepoTags): the image author's text.
            print("\(UntrustedText.shown(name)) \(image.manifest.digest)")
        }
        let unpacked = image.layers.filter { $0.report != nil }.count
        note("\(verb) \(image.names.joined(separator: ", ")): \(image.layers.count) layers (\(unpacked) unpacked now)")
        for layer in image.layers {
            guard let report = layer.report else { continue }
            if !report.droppedSetuid.isEmpty {
                note("layer \(layer.diffID.short): setuid/setgid dropped on \(report.droppedSetuid.count) files")
            }
            if !report.skippedDevices.isEmpty {
                note("layer \(layer.diffID.short): \(report.skippedDevices.count) device files skipped")
            }
        }
        for warning in image.warnings {
            note("warning: \(warning)")
        }
    }

    package static func note(_ text: String) {
        FileDescriptorWriter.write(Array("dgrid: \(UntrustedText.lineSafe(text))\n".utf8), to: STDERR_FILENO)
    }

    /// Left-aligned columns, two spaces apart; the last column is not padded.
    /// Cells may hold untrusted text (names, approvers, media types): each is
    /// made inert and kept on its line.
    package static func table(_ header: [String], _ rows: [[String]]) -> String {
        let all = [header] + rows.map { $0.map(UntrustedText.lineSafe) }
        let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
        return all.map { row in
            row.enumerated().map { column, cell in
                column == row.count - 1 ? cell : cell.padding(to: widths[column])
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }

    package static func json<T: Encodable>(_ value: T) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(value) else { return "{}" }
        // The same JSON value, with C1, bidi and zero-width characters as \u escapes.
        return UntrustedText.jsonSafe(String(decoding: data, as: UTF8.self))
    }

    /// Who approves: `--approved-by`, else the invoking user (through sudo too).
    package static func invokingUser() -> String {
        let env = ProcessEnvironment.current
        for key in ["SUDO_USER", "USER", "LOGNAME"] {
            if let value = env[key], !value.isEmpty { return value }
        }
        return "uid \(getuid())"
    }

    package static func size(_ bytes: Int64) -> String {
        let units: [(Int64, String)] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")]
        for (unit, name) in units where bytes >= unit {
            let value = Double(bytes) / Double(unit)
            return "\((value * 10).rounded() / 10) \(name)"
        }
        return "\(bytes) B"
    }
}

extension String {
    func padding(to width: Int) -> String {
        count >= width ? self : self + String(repeating: " ", count: width - count)
    }
}
