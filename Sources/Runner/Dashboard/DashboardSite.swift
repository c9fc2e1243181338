import Foundation

/// The dashboard's files (docs/ARCHITECTURE.md §12): `index.html`, the page,
/// and `dashboard.json`, the numbers it shows — what a script or a test reads
/// instead of the HTML.
public enum DashboardSite {
    public static let page = "index.html", numbers = "dashboard.json"

    /// The files, and the numbers as written (with the page's size).
    public static func files(_ dashboard: Dashboard) -> (files: [(name: String, bytes: [UInt8])], numbers: DashboardNumbers) {
        let html = Array(DashboardPage.html(dashboard).utf8)
        var numbers = dashboard.numbers
        numbers.pageBytes = html.count
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        // Numbers, dgrid's own words, a validated grid id and a commit id: nothing untrusted to escape.
        let json = ((try? encoder.encode(numbers)).map(Array.init) ?? Array("{}".utf8)) + [0x0A]
        return ([(page, html), (Self.numbers, json)], numbers)
    }

    /// Builds the site and puts it at `directory` in one step (`SitePublisher`).
    public static func publish(_ dashboard: Dashboard, at directory: String) throws(SitePublisher.Failure) -> DashboardNumbers {
        let (files, numbers) = files(dashboard)
        try SitePublisher.publish(files, at: directory)
        return numbers
    }
}
