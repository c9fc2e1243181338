import DGridCLI
import Foundation
import Testing
import TestSupport

/// What a newcomer sees first: `dgrid --help` names every verb, the main job
/// (the grid) included, `dgrid help VERB` shows the verb's own options, and no
/// help text carries a line break inside a paragraph, which ArgumentParser
/// would keep while re-wrapping the rest into ragged lines.
@Suite(.system) struct HelpCLITests {
    /// The three binaries, each of whose trees is printed by its own `--help`.
    static var binaries: [String] {
        let directory = (CLI.binary as NSString).deletingLastPathComponent
        return [CLI.binary, directory + "/dgrid-grid", directory + "/dgrid-registry"]
    }

    @Test func topLevelHelpListsEveryVerbWithItsLine() throws {
        let help = try CLI.run(["--help"], environment: ["COLUMNS": "400"])
        #expect(help.status == 0, "\(help.stderr)")
        let lines = help.stdout.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
        for (verb, abstract) in [("init", VerbAbstract.gridInit), ("submit", VerbAbstract.gridSubmit),
                                 ("worker", VerbAbstract.gridWorker), ("status", VerbAbstract.gridStatus),
                                 ("result", VerbAbstract.gridResult), ("fold", VerbAbstract.gridFold),
                                 ("sandbox", nil), ("image", nil)] {
            let line = lines.first { $0.hasPrefix(verb + " ") }
            #expect(line != nil, "`dgrid --help` does not list \(verb):\n\(help.stdout)")
            if let abstract, let line {
                #expect(line.hasSuffix(abstract), "\(verb)'s line: \(line)")
            }
        }
        let image = try CLI.run(["image", "--help"], environment: ["COLUMNS": "400"])
        #expect(image.stdout.contains("pull ") && image.stdout.contains(VerbAbstract.imagePull), "\(image.stdout)")
    }

    /// `dgrid help VERB` is handed to the binary that holds the verb, so it shows its options.
    @Test func helpForAVerbShowsItsOptions() throws {
        for (arguments, option) in [(["help", "worker"], "--slots"), (["help", "submit"], "--flat"),
                                    (["worker", "--help"], "--slots"), (["help", "image", "pull"], "--insecure")] {
            let help = try CLI.run(arguments)
            #expect(help.status == 0, "dgrid \(arguments.joined(separator: " ")): \(help.stderr)")
            #expect(help.stdout.contains(option), "dgrid \(arguments.joined(separator: " ")):\n\(help.stdout)")
            #expect(help.stdout.contains("USAGE: dgrid \(arguments.filter { $0 != "help" && $0 != "--help" }.joined(separator: " "))"),
                    "\(help.stdout)")
        }
    }

    /// Every abstract and discussion of every command and option, from each
    /// binary's own dump of its tree: a single newline may only start a list
    /// item or an indented line; prose is one line per paragraph.
    @Test func helpTextsHaveNoLineBreakInsideAParagraph() throws {
        var ragged: [String] = []
        for binary in Self.binaries {
            let dump = try ProcessRunner.run(binary, ["--experimental-dump-help"])
            try #require(dump.status == 0, "\(binary): \(dump.stderr)")
            let tree = try JSONSerialization.jsonObject(with: Data(dump.stdout.utf8))
            Self.visit(tree, path: "[\((binary as NSString).lastPathComponent)]") { path, text in
                for paragraph in text.components(separatedBy: "\n\n") {
                    let lines = paragraph.split(separator: "\n", omittingEmptySubsequences: false)
                    for (previous, line) in zip(lines, lines.dropFirst()) where !Self.startsListItemOrIndent(line) {
                        ragged.append("\(path): …\(previous.suffix(40))⏎\(line.prefix(40))…")
                    }
                }
            }
        }
        #expect(ragged.isEmpty, "hard line breaks inside paragraphs:\n\(ragged.joined(separator: "\n"))")
    }

    static func startsListItemOrIndent(_ line: Substring) -> Bool {
        line.isEmpty || line.hasPrefix(" ") || line.hasPrefix("- ") || line.hasPrefix("* ")
            || (line.first?.isNumber == true && line.dropFirst().first == ".")
    }

    /// Calls `body` with every "abstract" and "discussion" string in the dump.
    static func visit(_ node: Any, path: String, _ body: (String, String) -> Void) {
        if let object = node as? [String: Any] {
            let here = (object["commandName"] as? String).map { path + " " + $0 } ?? path
            for (key, value) in object {
                if ["abstract", "discussion"].contains(key), let text = value as? String {
                    body(here + " " + key, text)
                } else {
                    visit(value, path: here, body)
                }
            }
        } else if let array = node as? [Any] {
            for element in array { visit(element, path: path, body) }
        }
    }
}
